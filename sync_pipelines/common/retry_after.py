"""``Retry-After`` (RFC 9110): delay seconds or an HTTP date."""

from __future__ import annotations

import datetime as dt
import email.utils

from sync_pipelines.common.time import aware, utc_now


def retry_after_seconds(value: str, now: dt.datetime | None = None) -> float | None:
    """The seconds a ``Retry-After`` value asks to wait (never negative), or ``None`` when it is
    neither a number nor an HTTP date. A date counts from ``now`` (default: this machine's
    clock; pass the answer's ``Date`` to use the server's)."""
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((aware(when) - aware(now or utc_now())).total_seconds(), 0.0)
