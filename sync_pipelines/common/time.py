"""Times: every time sync-pipelines stores or compares is a time-zone-aware UTC datetime."""

from __future__ import annotations

import datetime as dt
from typing import overload


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` with UTC as its time zone when it has none (SQLite returns naive datetimes;
    every time the store holds is UTC); ``None`` stays ``None``."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)
