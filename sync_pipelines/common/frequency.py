"""Sync frequencies: ``frequency`` + ``frequency_units`` <-> interval <-> cron.

Sequin's shorthand (``"continuous"``, ``"4h"``, ``"30m"``, ``"1d"``, ``"2w"``) maps onto the same
pair; a continuous sync has no interval.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from enum import StrEnum

CONTINUOUS = "continuous"


class FrequencyUnits(StrEnum):
    """Units of a sync's frequency, as in the seed API."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"


_UNIT_SECONDS = {
    FrequencyUnits.MINUTES: 60,
    FrequencyUnits.HOURS: 3600,
    FrequencyUnits.DAYS: 86400,
    FrequencyUnits.WEEKS: 604800,
}
_SHORTHAND_UNITS = {
    "m": FrequencyUnits.MINUTES,
    "min": FrequencyUnits.MINUTES,
    "h": FrequencyUnits.HOURS,
    "d": FrequencyUnits.DAYS,
    "w": FrequencyUnits.WEEKS,
}
_SHORTHAND = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)


def parse_shorthand(text: str) -> tuple[int, FrequencyUnits] | None:
    """Parse ``"4h"``-style shorthand; ``"continuous"`` gives ``None``.

    Raises:
        ValueError: the text is neither ``continuous`` nor ``<number><m|h|d|w>``.
    """
    if text.strip().lower() == CONTINUOUS:
        return None
    match = _SHORTHAND.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a frequency: use 'continuous' or a number with a unit "
            "m, h, d or w, such as '30m', '4h', '1d'"
        )
    return int(match.group(1)), _SHORTHAND_UNITS[match.group(2).lower()]


def to_shorthand(frequency: int, units: FrequencyUnits) -> str:
    """The shorthand of a frequency, e.g. ``(4, hours) -> "4h"``."""
    return f"{frequency}{FrequencyUnits(units).value[0]}"


def interval_seconds(frequency: int, units: FrequencyUnits) -> int:
    """The seconds between two runs of a sync (exact, for any size of ``frequency``)."""
    return frequency * _UNIT_SECONDS[FrequencyUnits(units)]


def interval(frequency: int, units: FrequencyUnits) -> dt.timedelta:
    """The time between two runs of a sync."""
    return dt.timedelta(seconds=interval_seconds(frequency, units))


def stable_offset(key: str, modulo: int) -> int:
    """A stable pseudo-random offset in ``[0, modulo)`` for ``key`` (same on every process)."""
    return zlib.crc32(key.encode()) % modulo


def cron_schedule(frequency: int, units: FrequencyUnits, *, spread_key: str = "") -> str | None:
    """A cron expression running exactly every ``frequency`` ``units``, or ``None``.

    Only intervals cron can express exactly get one: N minutes dividing 60, N hours dividing 24,
    1 day and 1 week. Runs are spread over the hour (and the day, for daily and weekly syncs) by
    a stable offset derived from ``spread_key`` so that many syncs do not all start at :00.
    """
    units = FrequencyUnits(units)
    minute = stable_offset(spread_key + "/minute", 60)
    if units is FrequencyUnits.MINUTES and 60 % frequency == 0:
        if frequency == 1:
            return "* * * * *"
        first = minute % frequency
        return f"{','.join(str(m) for m in range(first, 60, frequency))} * * * *"
    if units is FrequencyUnits.HOURS and 24 % frequency == 0:
        if frequency == 1:
            return f"{minute} * * * *"
        first = stable_offset(spread_key + "/hour", frequency)
        return f"{minute} {','.join(str(h) for h in range(first, 24, frequency))} * * *"
    if units is FrequencyUnits.DAYS and frequency == 1:
        return f"{minute} {stable_offset(spread_key + '/hour', 24)} * * *"
    if units is FrequencyUnits.WEEKS and frequency == 1:
        hour = stable_offset(spread_key + "/hour", 24)
        return f"{minute} {hour} * * {stable_offset(spread_key + '/weekday', 7)}"
    return None
