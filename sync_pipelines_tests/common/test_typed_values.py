"""Cursor values survive the store exactly: microseconds, time zones, decimal digits."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from sync_pipelines.common.typed_values import decode_value, encode_value

VALUES = [
    42,
    2**62,
    decimal.Decimal("12345678901234567890.123456789"),
    0.1,
    "ünïcode ✓",
    dt.datetime(
        2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
    ),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1),
    dt.date(1999, 12, 31),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ for v in VALUES])
def test_round_trip_through_json_is_exact(value):
    decoded = decode_value(json.loads(json.dumps(encode_value(value))))
    assert decoded == value and type(decoded) is type(value)
    if isinstance(value, dt.datetime):
        assert decoded.utcoffset() == value.utcoffset()


def test_none_and_unorderable_values():
    assert encode_value(None) is None and decode_value(None) is None
    with pytest.raises(TypeError, match="boolean cannot order"):
        encode_value(True)
    with pytest.raises(TypeError, match="dict"):
        encode_value({"a": 1})
    with pytest.raises(ValueError, match="unknown typed value"):
        decode_value({"type": "blob", "value": "x"})
