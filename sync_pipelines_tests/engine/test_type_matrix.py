"""The type matrix: every source kind into every destination kind, every type, edge values.

One table per route holds every column (so a route costs one run); the destination's values are
read back as Python values and compared by type (instants, exact decimals, bytes, parsed JSON),
never as strings. Values no destination can hold fail the run with a clear error instead.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from sync_pipelines.contract.models import RunStatus
from sync_pipelines.engine import SyncRunError, field_types, run_sync
from sync_pipelines.engine.errors import DestinationTypeConflictError
from sync_pipelines_tests.engine.conftest import KINDS, Database, Scenario

ROUTES = [(source, destination) for source in KINDS for destination in KINDS]
D = decimal.Decimal
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))
MINUS_08 = dt.timezone(dt.timedelta(hours=-8))
UPDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class _Declared(sa.types.UserDefinedType):
    """A column declared with a given type name whose values are bound as they are."""

    cache_ok = True

    def __init__(self, ddl: str) -> None:
        self.ddl = ddl

    def get_col_spec(self, **kw: object) -> str:
        return self.ddl


def aware() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")


def naive() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


# --- the common columns: (source column type by source kind, object field type, values) -------

COMMON_FIELDS = {
    "id": "integer",
    "order": "string",  # keywords as column names
    "group": "integer",
    "by": "string",
    "amount": "number",
    "wide": "number",
    "dbl": "float",
    "dbl_n": "number",  # a double into an exact decimal: the shortest text that reads back
    "ts": "timestamp",
    "local": "datetime_ntz",
    "day": "date",
    "tod": "time_ntz",
    "txt": "string",
    "blob": "binary",
    "doc": "json",
    "flag": "boolean",
    "updated_at": "timestamp",
}

ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "order": "first",
        "group": 9223372036854775807,
        "by": "ü",
        "amount": D("9999999999.9999999999"),  # numeric(20, 10) at full precision
        "wide": D("12345.123456789012345678901234567890"),
        "dbl": 0.30000000000000004,
        "dbl_n": 0.30000000000000004,
        "ts": dt.datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=PLUS_0530),
        "local": dt.datetime(2000, 2, 29, 23, 59, 59, 999999),
        "day": dt.date(9999, 12, 31),
        "tod": dt.time(23, 59, 59, 999999),
        "txt": "héllo wörld ✓ 𝄞 日本 \"quoted\" 'single' \\ back",
        "blob": b"\x00\xff\x10binary\x00",
        "doc": {"a": [1, 2.5, {"b": "ü ✓"}], "n": None, "t": True},
        "flag": True,
    },
    {
        "id": 2,
        "order": "",
        "group": -9223372036854775808,
        "by": "by",
        "amount": D("-0.0000000001"),  # a negative tiny decimal
        "wide": D("-0.000000000000000000000000000001"),
        "dbl": -1.7976931348623157e308,
        "dbl_n": -1e-7,
        "ts": dt.datetime(1000, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        "local": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "day": dt.date(1000, 1, 1),
        "tod": dt.time(0, 0, 0),
        "txt": "",
        "blob": b"",
        "doc": [],
        "flag": False,
    },
    {
        "id": 3,
        "order": None,
        "group": None,
        "by": None,
        "amount": None,
        "wide": None,
        "dbl": None,
        "dbl_n": None,
        "ts": None,
        "local": None,
        "day": None,
        "tod": None,
        "txt": None,
        "blob": None,
        "doc": None,
        "flag": None,
    },
]


def common_columns(kind: str) -> list[sa.Column]:
    exact_text = field_types.ExactDecimalText()  # SQLite's NUMERIC would keep 15 digits
    wide = {
        "postgres": sa.Numeric(65, 30),
        "mysql": sa.Numeric(65, 30),
        "duckdb": sa.Numeric(38, 30),
        "sqlite": exact_text,
    }[kind]
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("order", sa.String(50)),
        sa.Column("group", sa.BigInteger),
        sa.Column("by", sa.String(50)),
        sa.Column("amount", exact_text if kind == "sqlite" else sa.Numeric(20, 10)),
        sa.Column("wide", wide),
        sa.Column("dbl", sa.Double()),
        sa.Column("dbl_n", sa.Double()),
        sa.Column("ts", aware()),
        sa.Column("local", naive()),
        sa.Column("day", sa.Date),
        sa.Column("tod", sa.Time().with_variant(mysql.TIME(fsp=6), "mysql")),
        sa.Column("txt", sa.Text),
        sa.Column("blob", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")),
        sa.Column("doc", sa.Text if kind == "sqlite" else sa.JSON(none_as_null=True)),
        sa.Column("flag", sa.Boolean),
        sa.Column("updated_at", aware()),
    ]


# --- columns only some sources have ------------------------------------------------------------

EXTRA_FIELDS: dict[str, dict[str, str]] = {
    "postgres": {
        "money": "number",
        "uid": "string",
        "inet": "string",
        "cidr": "string",
        "mac": "string",
        "ttz": "time_tz",
        "iv": "string",
        "mood": "string",
        "ints": "json",
        "texts": "array",
    },
    "mysql": {"span": "string"},
    "sqlite": {"epoch": "timestamp"},
    "duckdb": {"uid": "string", "iv": "string"},
}


def pg_extras(database: Database) -> list[sa.Column]:
    mood = postgresql.ENUM("sad", "happy", name="mood", schema=database.schema)
    return [
        sa.Column("money", postgresql.MONEY),
        sa.Column("uid", postgresql.UUID(as_uuid=True)),
        sa.Column("inet", postgresql.INET),
        sa.Column("cidr", postgresql.CIDR),
        sa.Column("mac", postgresql.MACADDR),
        sa.Column("ttz", sa.Time(timezone=True)),
        sa.Column("iv", postgresql.INTERVAL),
        sa.Column("mood", mood),
        sa.Column("ints", postgresql.ARRAY(sa.Integer)),
        sa.Column("texts", postgresql.ARRAY(sa.Text)),
    ]


UID = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
EXTRA_SOURCE: dict[str, list[dict[str, Any]]] = {
    "postgres": [
        {
            "money": "92233720368547758.07",
            "uid": UID,
            "inet": "192.168.1.5/24",
            "cidr": "2001:db8::/32",
            "mac": "08:00:2b:01:02:03",
            "ttz": "12:34:56.789+05:30",
            "iv": "1 year 2 mons 3 days 04:05:06.789",
            "mood": "happy",
            "ints": [1, 2, None],
            "texts": ["a", "b c", "ü"],
        },
        {
            "money": "-12.34",
            "uid": uuid.UUID(int=0),
            "inet": "10.0.0.1",
            "cidr": "10.0.0.0/8",
            "mac": "ff:ff:ff:ff:ff:ff",
            "ttz": "00:00:00-08",
            "iv": "-1 days -00:00:01",
            "mood": "sad",
            "ints": [],
            "texts": [],
        },
    ],
    "mysql": [{"span": "838:59:59"}, {"span": "-01:30:00.5"}],
    "sqlite": [{"epoch": 1700000000}, {"epoch": -86400}],
    "duckdb": [
        {"uid": UID, "iv": "1 year 2 months 3 days 04:05:06.789"},
        {"uid": None, "iv": "-1 day -1 second"},
    ],
}
EXTRA_EXPECTED: dict[str, list[dict[str, Any]]] = {
    "postgres": [
        {
            "money": D("92233720368547758.07"),
            "uid": str(UID),
            "inet": "192.168.1.5/24",
            "cidr": "2001:db8::/32",
            "mac": "08:00:2b:01:02:03",
            "ttz": dt.time(12, 34, 56, 789000, tzinfo=PLUS_0530),  # read as 12:34:56.789+05:30
            "iv": "P1Y2M3DT4H5M6.789S",
            "mood": "happy",
            "ints": [1, 2, None],
            "texts": ["a", "b c", "ü"],
        },
        {
            "money": D("-12.34"),
            "uid": "00000000-0000-0000-0000-000000000000",
            "inet": "10.0.0.1",
            "cidr": "10.0.0.0/8",
            "mac": "ff:ff:ff:ff:ff:ff",
            "ttz": dt.time(0, 0, tzinfo=MINUS_08),
            "iv": "P-1DT-1S",
            "mood": "sad",
            "ints": [],
            "texts": [],
        },
    ],
    "mysql": [{"span": "838:59:59"}, {"span": "-01:30:00.500000"}],
    "sqlite": [
        {"epoch": dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)},
        {"epoch": dt.datetime(1969, 12, 31, tzinfo=dt.UTC)},
    ],
    "duckdb": [{"uid": str(UID), "iv": "P1Y2M3DT4H5M6.789S"}, {"uid": None, "iv": "P-1DT-1S"}],
}


def extra_columns(database: Database) -> list[sa.Column]:
    kind = database.kind
    if kind == "postgres":
        return pg_extras(database)
    if kind == "mysql":
        return [sa.Column("span", mysql.TIME(fsp=6))]
    if kind == "sqlite":
        return [sa.Column("epoch", _Declared("TIMESTAMP"))]  # integer epoch seconds
    return [sa.Column("uid", sa.Uuid()), sa.Column("iv", sa.Interval())]


# --- arranging and comparing -------------------------------------------------------------------


def source_rows(kind: str) -> list[dict[str, Any]]:
    """The rows as the source stores them (no time zones: UTC wall clock; SQLite: JSON text)."""
    rows = []
    extras = EXTRA_SOURCE[kind] + [dict.fromkeys(EXTRA_SOURCE[kind][0])]
    for row, extra in zip(ROWS, extras, strict=True):
        row = {**row, **extra, "updated_at": UPDATED}
        if kind in ("sqlite", "mysql"):
            for key in ("ts", "updated_at"):
                if row[key] is not None:
                    row[key] = row[key].astimezone(dt.UTC).replace(tzinfo=None)
        if kind == "sqlite" and row["doc"] is not None:
            row["doc"] = json.dumps(row["doc"])
        if kind == "duckdb":  # duckdb_engine binds decimals as doubles: written as SQL text
            row = {k: sa.literal(str(v)) if isinstance(v, D) else v for k, v in row.items()}
            if row["iv"] is not None:
                row["iv"] = sa.literal_column(f"INTERVAL '{row['iv']}'")
        rows.append(row)
    return rows


def create_source(database: Database) -> sa.Table:
    table = database.table("typed", *common_columns(database.kind), *extra_columns(database))
    rows = source_rows(database.kind)
    if database.kind == "duckdb":  # intervals are written as SQL literals
        with database.engine.begin() as connection:
            table.create(connection)
            for row in rows:
                connection.execute(table.insert().values(**row))
        return table
    return database.create(table, rows)


def expected_rows(kind: str) -> list[dict[str, Any]]:
    extras = EXTRA_EXPECTED[kind] + [dict.fromkeys(EXTRA_EXPECTED[kind][0])]
    return [
        {**row, **extra, "updated_at": UPDATED, "ecid": "acme"}
        | ({"dbl_n": D(repr(row["dbl_n"]))} if row["dbl_n"] is not None else {})
        for row, extra in zip(ROWS, extras, strict=True)
    ]


def read_back(database: Database, name: str) -> list[dict[str, Any]]:
    reflected = database.reflect(name)
    table = sa.Table(  # doubles as floats (SQLAlchemy's MySQL DOUBLE reads Decimals)
        name,
        sa.MetaData(),
        *[
            sa.Column(c.name, sa.Double() if isinstance(c.type, sa.Float) else c.type)
            for c in reflected.c
        ],
        schema=reflected.schema,
    )
    with database.engine.connect() as connection:
        result = connection.execute(sa.select(table).order_by(table.c.id))
        return [dict(row._mapping) for row in result]


def same(expected: Any, actual: Any, field_type: str) -> bool:
    """Type-aware equality of an expected value and the one read back."""
    if expected is None:
        return actual is None
    if actual is None:
        return False
    if field_type in ("json", "array"):
        return (json.loads(actual) if isinstance(actual, str) else actual) == expected
    if field_type == "number":
        return not isinstance(actual, float) and D(str(actual)) == expected
    if field_type == "float":
        return isinstance(actual, float) and actual == expected
    if field_type == "boolean":
        return actual in (0, 1) and bool(actual) is expected
    if field_type == "binary":
        return isinstance(actual, bytes | memoryview) and bytes(actual) == expected
    if field_type in ("timestamp", "datetime_ntz"):
        if isinstance(actual, str):
            actual = dt.datetime.fromisoformat(actual)
        if not isinstance(actual, dt.datetime):
            return False
        if expected.tzinfo is None:
            return actual.replace(tzinfo=None) == expected and actual.tzinfo is None
        if actual.tzinfo is None:
            actual = actual.replace(tzinfo=dt.UTC)  # databases without zones hold UTC
        return actual == expected
    if field_type == "time_tz":
        if isinstance(actual, str):
            actual = dt.time.fromisoformat(actual)
        return actual == expected and actual.utcoffset() == expected.utcoffset()
    if field_type == "integer":
        return isinstance(actual, int) and actual == expected
    if field_type in ("date", "time_ntz"):
        return type(actual) is type(expected) and actual == expected
    return isinstance(actual, str) and actual == expected


def make_route(scenario: Scenario) -> tuple[Any, dict[str, str]]:
    create_source(scenario.source)
    fields = {**COMMON_FIELDS, **EXTRA_FIELDS[scenario.source.kind]}
    scenario.make_object(fields=[{"name": n, "type": t} for n, t in fields.items()])
    return scenario.make_sync(table="typed"), fields


@pytest.mark.parametrize("scenario", ROUTES, ids=lambda r: f"{r[0]}-to-{r[1]}", indirect=True)
def test_every_type_arrives_exactly(scenario: Scenario) -> None:
    sync, fields = make_route(scenario)

    run_sync(sync.id, scenario.client)
    run_sync(sync.id, scenario.client)  # a second run re-reads the boundary: still exact

    got = read_back(scenario.destination, scenario.table_name)
    want = expected_rows(scenario.source.kind)
    assert len(got) == len(want)
    wrong = [
        (row["id"], name, row[name], actual[name])
        for row, actual in zip(want, got, strict=True)
        for name in fields
        if not same(row[name], actual[name], fields[name])
    ]
    assert not wrong, wrong
    assert all(actual["ecid"] == "acme" for actual in got)


# --- values a destination cannot hold: clear errors, nothing written ----------------------------


def run_fails(scenario: Scenario, sync: Any, *needles: str) -> str:
    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client)
    message = str(raised.value)
    assert f"sync {sync.id} ('acme events')" in message, message
    assert scenario.destination.namespace in message or scenario.table_name in message, message
    for needle in needles:
        assert needle in message, message
    run = scenario.client.list_runs(sync.id)[0]
    assert run.status is RunStatus.FAILED
    assert scenario.client.get_sync(sync.id).cursor_position is None
    if scenario.destination.has_table(scenario.table_name):
        assert read_back(scenario.destination, scenario.table_name) == []
    return message


def one_column_route(scenario: Scenario, column: sa.Column, field_type: str, value: Any) -> Any:
    scenario.source.create(
        scenario.source.table(
            "odd",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            column,
            sa.Column("updated_at", aware()),
        ),
        [{"id": 1, column.name: value, "updated_at": UPDATED.replace(tzinfo=None)}],
    )
    scenario.make_object(
        fields=[
            {"name": "id", "type": "integer"},
            {"name": column.name, "type": field_type},
            {"name": "updated_at", "type": "timestamp"},
        ]
    )
    return scenario.make_sync(table="odd")


@pytest.mark.parametrize("scenario", [("postgres", "duckdb")], indirect=True)
def test_decimal_beyond_duckdb_fails_naming_column_and_value(scenario: Scenario) -> None:
    value = D("123456789012345678901234567890123.5")  # 34 digits before the point, scale 30
    sync = one_column_route(scenario, sa.Column("wide", sa.Numeric(65, 30)), "number", value)
    run_fails(scenario, sync, "'wide'", "123456789012345678901234567890123.5")


@pytest.mark.parametrize("scenario", [("postgres", "mysql")], indirect=True)
def test_nan_into_mysql_fails_naming_column(scenario: Scenario) -> None:
    sync = one_column_route(scenario, sa.Column("ratio", sa.Double()), "float", math.inf)
    run_fails(scenario, sync, "'ratio'", "inf")


@pytest.mark.parametrize("scenario", [("postgres", "sqlite")], indirect=True)
def test_nan_into_a_number_field_fails_naming_column(scenario: Scenario) -> None:
    sync = one_column_route(scenario, sa.Column("ratio", sa.Double()), "number", math.nan)
    run_fails(scenario, sync, "'ratio'", "nan")


@pytest.mark.parametrize("scenario", [("sqlite", "postgres")], indirect=True)
def test_nul_character_into_postgres_fails_naming_column(scenario: Scenario) -> None:
    sync = one_column_route(scenario, sa.Column("note", sa.Text), "string", "a\x00b")
    run_fails(scenario, sync, "'note'", "NUL")


@pytest.mark.parametrize("memchr", [True, False], ids=["memchr", "re"])
@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()], ids=str)
def test_the_nul_check_scans_the_bytes_of_the_values_and_names_the_value(
    kind: pa.DataType, memchr: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sync_pipelines.engine.write import postgres as write_postgres

    if not memchr:  # where the C library's memchr cannot be loaded
        monkeypatch.setattr(write_postgres, "_memchr", lambda: None)
    else:
        assert write_postgres._memchr() is not None
    values = ["ab", None, "c\x00d", "", "ef"]
    column = pa.array(values, kind)
    assert write_postgres._may_hold_nul(column)
    # slices: only the bytes of their own values count
    assert not write_postgres._may_hold_nul(column.slice(0, 2))
    assert write_postgres._may_hold_nul(column.slice(2, 1))
    assert not write_postgres._may_hold_nul(column.slice(3))
    assert not write_postgres._may_hold_nul(pa.array([None, None], kind))
    assert not write_postgres._may_hold_nul(pa.array([], kind))
    write_postgres._refuse_nul("note", column.slice(3), "t")  # no NUL: no error
    with pytest.raises(DestinationTypeConflictError) as raised:
        write_postgres._refuse_nul("note", column.slice(1), "t")
    assert str(raised.value) == (
        "column 'note' of destination table t: PostgreSQL text cannot hold the NUL character "
        "(\\x00), found in 'c\\x00d'"
    )


def test_the_nul_check_reads_dictionary_encoded_text() -> None:
    from sync_pipelines.engine.write import postgres as write_postgres

    column = pa.array(["ab", "c\x00d", "ab"]).dictionary_encode()
    with pytest.raises(DestinationTypeConflictError, match="'note'.*'c\\\\x00d'"):
        write_postgres._refuse_nul("note", column, "t")
    # a NUL only in a dictionary value no row uses is no NUL
    unused = pa.DictionaryArray.from_arrays(pa.array([0, 0]), pa.array(["ab", "c\x00d"]))
    write_postgres._refuse_nul("note", unused, "t")
    write_postgres._refuse_nul("note", pa.array(["ab", "cd"]).dictionary_encode(), "t")


@pytest.mark.parametrize("scenario", [("mysql", "duckdb")], indirect=True)
def test_time_beyond_a_day_into_a_time_field_fails_naming_column(scenario: Scenario) -> None:
    sync = one_column_route(scenario, sa.Column("span", mysql.TIME(fsp=6)), "time_ntz", "25:00:00")
    run_fails(scenario, sync, "'span'", "25:00:00")


# --- a source column widened later widens the destination column --------------------------------

WIDEN_ROUTES = [
    ("postgres", "duckdb"),
    ("mysql", "postgres"),
    ("duckdb", "mysql"),
    ("sqlite", "postgres"),
    ("postgres", "mysql"),
]


def alter_to_numeric(database: Database) -> None:
    if database.kind == "sqlite":  # dynamic typing: the column takes decimals as they are
        return
    table = '"odd"' if database.kind != "mysql" else "odd"
    if database.schema:
        table = f'"{database.schema}".{table}'
    if database.kind == "mysql":
        statement = f"ALTER TABLE {table} MODIFY COLUMN qty DECIMAL(10, 2)"
    else:
        statement = f"ALTER TABLE {table} ALTER COLUMN qty TYPE DECIMAL(10, 2)"
    database.execute(sa.text(statement))


@pytest.mark.parametrize("scenario", WIDEN_ROUTES, ids=lambda r: f"{r[0]}-to-{r[1]}", indirect=True)
def test_integer_column_widened_to_numeric_widens_destination(scenario: Scenario) -> None:
    source = scenario.source.create(
        scenario.source.table(
            "odd",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("qty", sa.Integer),
            sa.Column("updated_at", aware()),
        ),
        [{"id": 1, "qty": 2, "updated_at": UPDATED.replace(tzinfo=None)}],
    )
    scenario.make_object(fields=[])  # written as read: the destination column follows the source
    sync = scenario.make_sync(table="odd", mappings={})
    run_sync(sync.id, scenario.client)

    alter_to_numeric(scenario.source)
    later = UPDATED.replace(tzinfo=None) + dt.timedelta(hours=1)
    scenario.source.insert(
        sa.Table(
            source.name, sa.MetaData(), *[sa.Column(c.name) for c in source.c], schema=source.schema
        ),
        # SQLite's dynamic typing: a REAL in an INTEGER column (read as a double)
        [
            {
                "id": 2,
                "qty": 1.5 if scenario.source.kind == "sqlite" else D("1.5"),
                "updated_at": later,
            }
        ],
    )
    run_sync(sync.id, scenario.client)

    got = {row["id"]: row["qty"] for row in read_back(scenario.destination, scenario.table_name)}
    assert isinstance(got[2], float) is (scenario.source.kind == "sqlite")
    assert D(str(got[2])) == D("1.5")
    assert D(str(got[1])) == 2


@pytest.mark.parametrize("scenario", [("postgres", "sqlite")], indirect=True)
def test_sqlite_integer_column_receiving_decimals_fails_clearly(scenario: Scenario) -> None:
    """SQLite cannot change a column's type: the run fails naming the column, nothing rounds."""
    source = scenario.source.create(
        scenario.source.table(
            "odd",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("qty", sa.Integer),
            sa.Column("updated_at", aware()),
        ),
        [{"id": 1, "qty": 2, "updated_at": UPDATED}],
    )
    scenario.make_object(fields=[])
    sync = scenario.make_sync(table="odd", mappings={})
    run_sync(sync.id, scenario.client)
    alter_to_numeric(scenario.source)
    scenario.source.insert(source, [{"id": 2, "qty": None, "updated_at": UPDATED}])
    scenario.source.execute(
        sa.text(f'UPDATE "{scenario.source.schema}".odd SET qty = 1.5 WHERE id = 2')
    )
    cursor = scenario.client.get_sync(sync.id).cursor_position
    with pytest.raises(SyncRunError) as raised:
        run_sync(sync.id, scenario.client)
    assert "'qty'" in str(raised.value) and "BIGINT" in str(raised.value)
    assert scenario.client.get_sync(sync.id).cursor_position == cursor
    got = {row["id"]: row["qty"] for row in read_back(scenario.destination, scenario.table_name)}
    assert got == {1: 2}


@pytest.mark.parametrize(
    "scenario",
    [("postgres", "duckdb"), ("postgres", "mysql"), ("duckdb", "postgres")],
    ids=lambda r: f"{r[0]}-to-{r[1]}",
    indirect=True,
)
def test_uuid_primary_key_across_runs(scenario: Scenario) -> None:
    keys = [uuid.UUID(int=n * 2**100) for n in range(1, 5)]
    source = scenario.source.create(
        scenario.source.table(
            "odd",
            sa.Column("id", sa.Uuid(), primary_key=True),
            sa.Column("note", sa.Text),
            sa.Column("updated_at", aware()),
        ),
        [{"id": k, "note": f"n{i}", "updated_at": UPDATED} for i, k in enumerate(keys[:3])],
    )
    scenario.make_object(
        fields=[
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string"},
            {"name": "updated_at", "type": "timestamp"},
        ]
    )
    sync = scenario.make_sync(table="odd")
    run_sync(sync.id, scenario.client, batch_size=2)  # a keyset position on a uuid inside a run
    scenario.source.insert(source, [{"id": keys[3], "note": "n3", "updated_at": UPDATED}])
    run_sync(sync.id, scenario.client)  # the next run starts from the checkpointed uuid

    got = read_back(scenario.destination, scenario.table_name)
    assert sorted((row["id"], row["note"]) for row in got) == sorted(
        (str(k), f"n{i}") for i, k in enumerate(keys)
    )


@pytest.mark.parametrize("scenario", [("postgres", "sqlite")], indirect=True)
def test_postgres_types_read_without_adbc_arrive_the_same(scenario: Scenario) -> None:
    """A type the ADBC reader hands as wire bytes (xml) sends the read through psycopg: the
    other values arrive exactly as the ADBC reader gives them."""
    names = ["money", "inet", "cidr", "ttz", "iv"]
    columns = [c for c in pg_extras(scenario.source) if c.name in names]
    table = scenario.source.table(
        "typed",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        *columns,
        sa.Column("doc", _Declared("XML")),
        sa.Column("updated_at", aware()),
    )
    scenario.source.create(table)
    rows = [
        {"id": i + 1, **{n: row[n] for n in names}, "doc": "<a/>", "updated_at": UPDATED}
        for i, row in enumerate(EXTRA_SOURCE["postgres"])
    ]
    scenario.source.insert(table, rows)
    fields = {"id": "integer", **{n: EXTRA_FIELDS["postgres"][n] for n in names}}
    fields |= {"doc": "string", "updated_at": "timestamp"}
    scenario.make_object(fields=[{"name": n, "type": t} for n, t in fields.items()])
    sync = scenario.make_sync(table="typed")

    run_sync(sync.id, scenario.client)

    got = read_back(scenario.destination, scenario.table_name)
    for want, actual in zip(EXTRA_EXPECTED["postgres"], got, strict=True):
        assert all(same(want[n], actual[n], fields[n]) for n in names), (want, actual)
        assert actual["doc"] == "<a/>"
