"""Values arrive exactly: microsecond timestamps, time zones, decimals, NULLs, unicode, JSON."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from sync_pipelines.engine import run_sync
from sync_pipelines_tests.engine.conftest import PAIRS, Scenario, as_json, pair_id

pytestmark = pytest.mark.parametrize("scenario", PAIRS, ids=pair_id, indirect=True)

PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))
FIELDS = [
    {"name": "id", "type": "integer"},
    {"name": "seen_at", "type": "timestamp"},
    {"name": "local_at", "type": "datetime_ntz"},
    {"name": "amount", "type": "number"},
    {"name": "note", "type": "string"},
    {"name": "doc", "type": "json"},
    {"name": "day", "type": "date"},
    {"name": "flag", "type": "boolean"},
    {"name": "updated_at", "type": "timestamp"},
]
DOC = {"a": [1, 2.5, {"b": "ü ✓"}], "n": None, "t": True}
SOURCE_ROWS = [
    {
        "id": 1,
        "seen_at": dt.datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=PLUS_0530),
        "local_at": dt.datetime(2024, 3, 1, 23, 59, 59, 999999),
        "amount": decimal.Decimal("12345678.123456"),
        "note": "héllo wörld ✓ 𝄞 日本",
        "doc": DOC,
        "day": dt.date(2024, 2, 29),
        "flag": True,
    },
    {
        "id": 2,
        "seen_at": dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        "local_at": dt.datetime(2000, 1, 1, 0, 0, 0, 1),
        "amount": decimal.Decimal("-0.000001"),
        "note": "",
        "doc": [],
        "day": dt.date(1970, 1, 1),
        "flag": False,
    },
    {
        "id": 3,
        "seen_at": None,
        "local_at": None,
        "amount": None,
        "note": None,
        "doc": None,
        "day": None,
        "flag": None,
    },
]


def source_table(scenario: Scenario) -> sa.Table:
    kind = scenario.source.kind
    aware = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")
    naive = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
    doc = sa.JSON() if kind != "sqlite" else sa.Text()
    return scenario.source.table(
        "typed",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seen_at", aware),
        sa.Column("local_at", naive),
        sa.Column("amount", sa.Numeric(20, 6)),
        sa.Column("note", sa.Text),
        sa.Column("doc", doc),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("updated_at", aware),
    )


def stored(scenario: Scenario, row: dict) -> dict:
    """A row as the source stores it: databases without time zones hold UTC wall-clock time."""
    row = {**row, "updated_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    if scenario.source.kind in ("sqlite", "mysql"):
        for key in ("seen_at", "updated_at"):
            if row[key] is not None:
                row[key] = row[key].astimezone(dt.UTC).replace(tzinfo=None)
    if scenario.source.kind == "sqlite" and row["doc"] is not None:
        row["doc"] = json.dumps(row["doc"])
    return row


def test_values_round_trip_exactly(scenario: Scenario) -> None:
    scenario.source.create(source_table(scenario), [stored(scenario, r) for r in SOURCE_ROWS])
    scenario.make_object(fields=FIELDS)
    sync = scenario.make_sync(table="typed")

    run_sync(sync.id, scenario.client)

    rows = scenario.rows()
    assert len(rows) == 3
    for got, want in zip(rows, SOURCE_ROWS, strict=True):
        assert got["ecid"] == "acme"
        assert got["id"] == want["id"]
        expected_seen = (
            want["seen_at"].astimezone(dt.UTC).replace(tzinfo=None) if want["seen_at"] else None
        )
        assert got["seen_at"] == expected_seen
        assert got["local_at"] == want["local_at"]
        if want["amount"] is None:
            assert got["amount"] is None
        else:
            assert decimal.Decimal(got["amount"]) == want["amount"]
        assert got["note"] == want["note"]
        assert as_json(got["doc"]) == want["doc"]
        assert got["day"] == want["day"]
        assert (None if got["flag"] is None else bool(got["flag"])) == want["flag"]
    if scenario.destination.kind in ("postgres", "duckdb"):
        table = scenario.destination.reflect("synced_events")
        with scenario.destination.engine.connect() as connection:
            seen = connection.execute(
                sa.select(table.c.seen_at).where(table.c.id == 1)
            ).scalar_one()
        assert seen.utcoffset() == dt.timedelta(0) or seen.tzinfo is not None
