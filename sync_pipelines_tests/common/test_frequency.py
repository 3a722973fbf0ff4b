"""Frequencies: shorthand, intervals and the cron expressions schedules are built from."""

from __future__ import annotations

import datetime as dt

import pytest

from sync_pipelines.common.frequency import FrequencyUnits, cron_schedule, interval, parse_shorthand


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("continuous", None),
        ("4h", (4, FrequencyUnits.HOURS)),
        ("30m", (30, FrequencyUnits.MINUTES)),
        ("1d", (1, FrequencyUnits.DAYS)),
        ("2w", (2, FrequencyUnits.WEEKS)),
        (" 45MIN ", (45, FrequencyUnits.MINUTES)),
    ],
)
def test_shorthand(text, expected):
    assert parse_shorthand(text) == expected


def test_bad_shorthand_says_what_is_accepted():
    with pytest.raises(ValueError, match="'every tuesday' is not a frequency"):
        parse_shorthand("every tuesday")


def test_interval():
    assert interval(45, FrequencyUnits.MINUTES) == dt.timedelta(minutes=45)
    assert interval(2, FrequencyUnits.WEEKS) == dt.timedelta(days=14)


@pytest.mark.parametrize(
    ("frequency", "units", "shape"),
    [
        (1, "minutes", r"^\* \* \* \* \*$"),
        (15, "minutes", r"^\d+,\d+,\d+,\d+ \* \* \* \*$"),
        (30, "minutes", r"^\d+,\d+ \* \* \* \*$"),
        (1, "hours", r"^\d+ \* \* \* \*$"),
        (6, "hours", r"^\d+ \d+,\d+,\d+,\d+ \* \* \*$"),
        (1, "days", r"^\d+ \d+ \* \* \*$"),
        (1, "weeks", r"^\d+ \d+ \* \* \d$"),
    ],
)
def test_exact_intervals_get_a_cron(frequency, units, shape):
    import re

    cron = cron_schedule(frequency, units, spread_key="sync-7")
    assert cron is not None and re.match(shape, cron), cron
    assert cron == cron_schedule(frequency, units, spread_key="sync-7")  # stable


def test_minutes_are_spread_by_key_and_stay_evenly_spaced():
    minutes = {cron_schedule(15, "minutes", spread_key=f"sync-{i}").split()[0] for i in range(20)}
    assert len(minutes) > 1
    for field in minutes:
        values = [int(v) for v in field.split(",")]
        assert [b - a for a, b in zip(values, values[1:], strict=False)] == [15, 15, 15]


@pytest.mark.parametrize(
    ("frequency", "units"),
    [(45, "minutes"), (5, "hours"), (3, "days"), (2, "weeks"), (90, "minutes")],
)
def test_intervals_cron_cannot_express_get_none(frequency, units):
    assert cron_schedule(frequency, units) is None
