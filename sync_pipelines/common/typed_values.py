"""Exact, typed JSON encoding of cursor and key values.

A cursor is never stored as a formatted string to be pasted into SQL: it is stored as a
``{"type": ..., "value": ...}`` pair that decodes back to the same Python value (microseconds,
time zones and decimal digits included) and is then bound as a query parameter.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

TypedValue = dict[str, Any]

_DECODERS = {
    "integer": int,
    "number": decimal.Decimal,
    "float": float,
    "string": str,
    "timestamp": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "uuid": uuid.UUID,
}


def encode_value(value: Any) -> TypedValue | None:
    """Encode one cursor or key value as a typed JSON pair (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a boolean cannot order a cursor")
    if isinstance(value, int):
        return {"type": "integer", "value": value}
    if isinstance(value, decimal.Decimal):
        return {"type": "number", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    if isinstance(value, dt.datetime):
        return {"type": "timestamp", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"type": "uuid", "value": str(value)}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    raise TypeError(f"cannot use a value of type {type(value).__name__} as a cursor or key")


def decode_value(typed: TypedValue | None) -> Any:
    """Decode a pair made by :func:`encode_value` back to the exact Python value."""
    if typed is None:
        return None
    kind = typed.get("type")
    if kind not in _DECODERS:
        raise ValueError(f"unknown typed value {kind!r}")
    if kind == "float":
        return float(typed["value"])
    return _DECODERS[kind](typed["value"])
