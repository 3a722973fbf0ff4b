"""Read a source incrementally: the keyset query and a stream of Arrow record batches.

One run streams one query ordered by ``(cursor, primary key)``; the position after each batch is
the last row's ``(cursor, primary key)``, and the next run starts from there:

* ``incremental_update`` and ``incremental_append``: ``cursor >= last cursor`` (minus
  ``lookback``), so a row committed later with the last cursor value is still read; the upsert
  (or, for append, inserting only keys not yet present) absorbs the rows read twice. An append
  sync without a primary key cannot tell re-read rows apart: it reads strictly after the last
  ``(cursor, key)``.
* Rows whose cursor is NULL (``null_cursor: include``) are read every run in a pass of their own,
  ordered and keyset-paged by the primary key; ``fail`` refuses them, ``skip`` leaves them out.
* PostgreSQL and MySQL/MariaDB sources with a time cursor: the checkpoint never passes the start
  of the oldest transaction still open when the run began (:func:`commit_horizon`), so a
  transaction that sets ``updated_at = now()`` and commits late is read by the next run.

Values are always bound parameters. Memory is bounded by the batch: PostgreSQL and MySQL use
server-side cursors, SQLite is read through ADBC (Arrow batches) and DuckDB natively.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import logging
import re
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import CursorTypeError, NullCursorError, SourceSchemaError
from sync_pipelines.engine.plan import SyncPlan
from sync_pipelines.models import (
    CursorPosition,
    FieldType,
    NullCursor,
    SyncMode,
    check_read_only_select,
)
from sync_pipelines.typed_values import decode_value, encode_value

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "CommitHorizon",
    "backfill_query",
    "backfill_watermark",
    "chunkable_key",
    "Keyset",
    "ReadBounds",
    "SourceRelation",
    "commit_horizon",
    "keyset_query",
    "last_value",
    "null_cursor_query",
    "read_backfill_batches",
    "read_batches",
    "read_bounds",
    "read_null_cursor",
    "read_null_cursor_batches",
    "source_relation",
]

logger = logging.getLogger("sync_pipelines.engine")

DEFAULT_BATCH_SIZE = 100_000
_TIME_FIELD_TYPES = {
    FieldType.TIMESTAMP,
    FieldType.DATETIME_TZ,
    FieldType.DATETIME_NTZ,
    FieldType.DATE,
}


@dataclass(frozen=True)
class Keyset:
    """A position in the source: a cursor value and a primary key value, as read."""

    cursor: Any
    primary_key: Any = None

    def to_position(self) -> CursorPosition:
        """The typed, exact checkpoint form."""
        return CursorPosition(
            cursor=encode_value(_plain(self.cursor)),
            primary_key=encode_value(_plain(self.primary_key)),
        )

    @classmethod
    def from_position(cls, position: CursorPosition | None) -> Keyset | None:
        """Decode a checkpoint (``None``: no position yet)."""
        if position is None or position.cursor is None:
            return None
        return cls(decode_value(position.cursor), decode_value(position.primary_key))


def _plain(value: Any) -> Any:
    """A value as typed_values can store it."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


@dataclass(frozen=True)
class ReadBounds:
    """Where a run starts: strictly after ``after`` and/or from ``from_cursor`` inclusive."""

    after: Keyset | None = None
    from_cursor: Any = None


@dataclass(frozen=True)
class SourceRelation:
    """The source table or wrapped custom_join, its column names and reflected types."""

    selectable: sa.FromClause
    columns: tuple[str, ...]
    types: dict[str, sa.types.TypeEngine]


# --- the source relation -------------------------------------------------------------------

_BIND_LIKE = re.compile(r"(?<![:\w\\]):(?=\w)")


def _custom_join_text(sql: str) -> str:
    """The query, checked again, without trailing ``;`` or comments; ``:name`` kept literal."""
    try:
        text = check_read_only_select(sql)
    except ValueError as error:
        raise SourceSchemaError(str(error)) from None
    return _BIND_LIKE.sub(r"\\:", text)


def source_relation(connection: sa.Connection, plan: SyncPlan) -> SourceRelation:
    """Reflect the source table, or probe the custom_join query, and check the sync's columns.

    Raises:
        SourceSchemaError: the table, a column or the query is missing or fails.
        CursorTypeError: the cursor column's type cannot order rows.
    """
    if plan.custom_join:
        query = sa.text(_custom_join_text(plan.custom_join)).columns()
        probe = sa.select(sa.literal_column("*")).select_from(query.subquery("src"))
        try:
            names = tuple(connection.execute(probe.where(sa.false())).keys())
        except sa.exc.DBAPIError as error:
            raise SourceSchemaError(
                f"the custom_join query fails: {_first_line(error)}"
            ) from None
        selectable = (
            sa.text(_custom_join_text(plan.custom_join))
            .columns(*[sa.column(name) for name in names])
            .subquery("src")
        )
        relation = SourceRelation(selectable, names, {})
    else:
        inspector = sa.inspect(connection)
        schema = _source_schema(connection, plan.source_namespace)
        try:
            reflected = inspector.get_columns(plan.source_table, schema=schema)
        except sa.exc.NoSuchTableError:
            reflected = []
        if not reflected:
            raise SourceSchemaError(f"{plan.source_label} does not exist")
        names = tuple(column["name"] for column in reflected)
        selectable = sa.table(
            plan.source_table, *[sa.column(name) for name in names], schema=schema
        )
        relation = SourceRelation(
            selectable, names, {column["name"]: column["type"] for column in reflected}
        )
    wanted = [plan.cursor, plan.primary_key]
    wanted += [field.source for field in plan.fields or ()]
    for name in wanted:
        if name is not None and name not in relation.columns:
            raise SourceSchemaError(
                f"column {name!r} does not exist in the {plan.source_label} "
                f"(columns: {', '.join(relation.columns)})"
            )
    if plan.cursor and plan.cursor in relation.types:
        cursor_type = relation.types[plan.cursor]
        if not field_types.orderable_sql_type(cursor_type):
            raise CursorTypeError(
                f"cursor column {plan.cursor!r} of the {plan.source_label} has type "
                f"{cursor_type}, which cannot order rows; use a timestamp, date or number column"
            )
    return relation


def _source_schema(connection: sa.Connection, namespace: str | None) -> str | None:
    """The schema to reflect: SQLite and DuckDB's ``main`` is their default one."""
    dialect = connection.dialect.name
    if not namespace:
        return None
    if dialect == "sqlite" and namespace == "main":
        return None
    if dialect == "mysql" and namespace == connection.engine.url.database:
        return None
    return namespace


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


# --- bounds and the keyset query -----------------------------------------------------------


def _cursor_is_time(plan: SyncPlan, relation: SourceRelation, last: Keyset | None) -> bool:
    destination = plan.destination_cursor
    declared = plan.object_field_types.get(destination) if destination else None
    if declared is not None:
        return declared in _TIME_FIELD_TYPES
    reflected = relation.types.get(plan.cursor) if plan.cursor else None
    if reflected is not None:
        return isinstance(reflected, sa.DateTime | sa.Date)
    return last is not None and isinstance(last.cursor, dt.date)


def _shift(value: Any, *, seconds: float, time_like: bool) -> Any:
    """``value`` moved back by a lookback (seconds for time cursors, units otherwise)."""
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=seconds)
    if isinstance(value, dt.date):
        return value - dt.timedelta(days=int(seconds // 86400) or 1)
    if isinstance(value, str) and time_like:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        shifted = parsed - dt.timedelta(seconds=seconds)
        return shifted.isoformat(sep=value[10] if len(value) > 10 else " ")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value - int(seconds)
    if isinstance(value, decimal.Decimal):
        return value - decimal.Decimal(seconds)
    if isinstance(value, float):
        return value - seconds
    return value


def read_bounds(
    plan: SyncPlan,
    relation: SourceRelation,
    cursor_before: CursorPosition | None,
    *,
    full_read: bool,
    now: dt.datetime | None = None,
) -> ReadBounds:
    """Where a run starts reading, from the last checkpoint, lookback and max_age_days."""
    if plan.cursor is None:
        return ReadBounds()
    last = None if full_read else Keyset.from_position(cursor_before)
    time_like = _cursor_is_time(plan, relation, last)
    after: Keyset | None = None
    from_cursor: Any = None
    if last is not None:
        if plan.mode is SyncMode.INCREMENTAL_APPEND and plan.primary_key is None:
            after = last  # no key to tell a re-read row from a new one
        else:
            from_cursor = last.cursor
            if plan.lookback:
                from_cursor = _shift(from_cursor, seconds=plan.lookback, time_like=time_like)
    if plan.max_age_days and time_like:
        oldest: Any = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=plan.max_age_days)
        if last is not None and isinstance(last.cursor, str):
            oldest = oldest.replace(tzinfo=None).isoformat(sep=" ")
        elif last is not None and isinstance(last.cursor, dt.datetime) and not last.cursor.tzinfo:
            oldest = oldest.replace(tzinfo=None)
        elif isinstance(relation.types.get(plan.cursor), sa.Date) and not isinstance(
            relation.types.get(plan.cursor), sa.DateTime
        ):
            oldest = oldest.date()
        if from_cursor is None or _later(oldest, from_cursor):
            from_cursor = oldest
    return ReadBounds(after=after, from_cursor=from_cursor)


def _later(a: Any, b: Any) -> bool:
    try:
        return a > b
    except TypeError:
        return False


def keyset_query(
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str | None,
    primary_key: str | None,
    bounds: ReadBounds,
) -> sa.Select:
    """``SELECT columns FROM source WHERE <keyset> ORDER BY cursor, primary key``.

    The keyset is ``(c > :c) OR (c = :c AND pk > :pk)`` after a position, and ``c >= :from``
    from an inclusive start; values are bound parameters.
    """
    source = relation.selectable
    query = sa.select(*[source.c[name] for name in columns])
    if cursor is None:
        return query
    c = source.c[cursor]
    query = query.where(c.is_not(None))
    if bounds.from_cursor is not None:
        query = query.where(c >= sa.bindparam("from_cursor", bounds.from_cursor))
    if bounds.after is not None:
        last_c = sa.bindparam("last_cursor", bounds.after.cursor)
        if primary_key is None or bounds.after.primary_key is None:
            query = query.where(c > last_c)
        else:
            pk = source.c[primary_key]
            last_pk = sa.bindparam("last_key", bounds.after.primary_key)
            query = query.where(sa.or_(c > last_c, sa.and_(c == last_c, pk > last_pk)))
    order = [c] if primary_key is None else [c, source.c[primary_key]]
    return query.order_by(*order)


def null_cursor_query(
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str | None,
    after_key: Any = None,
    limit: int | None = None,
) -> sa.Select:
    """``SELECT columns FROM source WHERE cursor IS NULL [AND pk > :key] ORDER BY pk LIMIT n``."""
    source = relation.selectable
    query = sa.select(*[source.c[name] for name in columns]).where(source.c[cursor].is_(None))
    if primary_key is None:
        return query
    key = source.c[primary_key]
    if after_key is not None:
        query = query.where(key > sa.bindparam("after_key", after_key))
    query = query.order_by(key)
    return query if limit is None else query.limit(limit)


def read_null_cursor(connection: sa.Connection, plan: SyncPlan, relation: SourceRelation) -> bool:
    """Apply the sync's ``null_cursor`` policy; ``True`` when the NULL-cursor pass must run.

    Raises:
        NullCursorError: rows have a NULL cursor and the policy is ``fail``, or the sync appends
            without a primary key (it could not tell them apart from one run to the next).
    """
    if plan.cursor is None:
        return False
    keyless_append = plan.mode is SyncMode.INCREMENTAL_APPEND and plan.primary_key is None
    if plan.null_cursor is NullCursor.INCLUDE and not keyless_append:
        return True
    source = relation.selectable
    count = connection.execute(
        sa.select(sa.func.count()).select_from(source).where(source.c[plan.cursor].is_(None))
    ).scalar_one()
    if not count:
        return False
    found = (
        f"{count} row{'s' if count != 1 else ''} of the {plan.source_label} "
        f"{'have' if count != 1 else 'has'} a NULL cursor column {plan.cursor!r}"
    )
    if plan.null_cursor is NullCursor.SKIP:
        logger.warning(
            "sync %s (%r): %s; skipped (null_cursor: skip)", plan.sync_id, plan.sync_name, found
        )
        return False
    if plan.null_cursor is NullCursor.FAIL:
        raise NullCursorError(
            f"{found} (null_cursor: fail); fill the column, or set null_cursor to include "
            "(read them every run) or skip"
        )
    raise NullCursorError(
        f"{found}; incremental_append without a primary key cannot tell them apart from one "
        "run to the next: give the sync a primary key, or set null_cursor to skip"
    )


# --- the backfill: a first load in primary-key chunks ------------------------------------


def chunkable_key(connection: sa.Connection, plan: SyncPlan, relation: SourceRelation) -> bool:
    """Whether a first load can read the source table in chunks through its key's index.

    The sync needs a cursor and a single-column integer, decimal or text primary key that is the
    table's primary key or leads one of its indexes (the last key read is bound as a parameter;
    other types, e.g. PostgreSQL's uuid, keep the one ``(cursor, key)`` read). A ``custom_join``
    (whose key has no index of its own) never is, nor a DuckDB source (a column store that sorts
    in its own process, not through an index).
    """
    if plan.custom_join or plan.cursor is None or plan.primary_key is None:
        return False
    key_type = relation.types.get(plan.primary_key)
    if not isinstance(key_type, sa.Integer | sa.Numeric | sa.String) or isinstance(
        key_type, sa.Enum
    ):
        return False
    if connection.dialect.name == "duckdb":
        return False
    if plan.mode not in (SyncMode.INCREMENTAL_UPDATE, SyncMode.INCREMENTAL_APPEND):
        return False
    inspector = sa.inspect(connection)
    schema = _source_schema(connection, plan.source_namespace)
    try:
        primary = inspector.get_pk_constraint(plan.source_table, schema=schema)
        indexes = inspector.get_indexes(plan.source_table, schema=schema)
        uniques = inspector.get_unique_constraints(plan.source_table, schema=schema)
    except (sa.exc.NoSuchTableError, NotImplementedError):
        return False
    leading = [(primary or {}).get("constrained_columns") or []]
    leading += [index.get("column_names") or [] for index in indexes]
    leading += [unique.get("column_names") or [] for unique in uniques]
    return any(columns and columns[0] == plan.primary_key for columns in leading)


def backfill_watermark(
    connection: sa.Connection, plan: SyncPlan, relation: SourceRelation, bounds: ReadBounds
) -> Keyset | None:
    """The greatest cursor in the source as the backfill starts (``None``: no cursor yet)."""
    assert plan.cursor is not None
    source = relation.selectable
    c = source.c[plan.cursor]
    query = sa.select(sa.func.max(c)).select_from(source)
    if bounds.from_cursor is not None:
        query = query.where(c >= sa.bindparam("from_cursor", bounds.from_cursor))
    value = connection.execute(query).scalar()
    return None if value is None else Keyset(value)


def backfill_query(
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str,
    after_key: Any,
    limit: int,
    include_null_cursor: bool,
    from_cursor: Any = None,
) -> sa.Select:
    """``SELECT columns FROM source WHERE pk > :key ORDER BY pk LIMIT n``: one chunk in key
    order, which the key's index serves without sorting the table.

    ``from_cursor`` (``max_age_days``) bounds the cursor; rows whose cursor is NULL are kept
    with ``include_null_cursor`` and left out otherwise.
    """
    source = relation.selectable
    key = source.c[primary_key]
    c = source.c[cursor]
    query = sa.select(*[source.c[name] for name in columns])
    if after_key is not None:
        query = query.where(key > sa.bindparam("after_key", after_key))
    if from_cursor is not None:
        bounded = c >= sa.bindparam("from_cursor", from_cursor)
        query = query.where(sa.or_(bounded, c.is_(None)) if include_null_cursor else bounded)
    elif not include_null_cursor:
        query = query.where(c.is_not(None))
    return query.order_by(key).limit(limit)


def read_backfill_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str,
    after_key: Any,
    include_null_cursor: bool,
    from_cursor: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """The source rows after ``after_key`` in key order, one chunk of ``batch_size`` rows per
    query (:func:`backfill_query`), each chunk starting after the last key read."""
    while True:
        query = backfill_query(
            relation,
            columns,
            cursor=cursor,
            primary_key=primary_key,
            after_key=after_key,
            limit=batch_size,
            include_null_cursor=include_null_cursor,
            from_cursor=from_cursor,
        )
        rows = 0
        for batch in _rebatch(_page_batches(engine, query, batch_size), batch_size):
            rows += batch.num_rows
            after_key = last_value(batch.column(columns.index(primary_key)))
            yield batch
        if rows < batch_size:
            return


# --- late commits --------------------------------------------------------------------------

_OPEN_TRANSACTIONS = sa.text(
    """
    WITH open AS (
        SELECT least(min(xact_start), clock_timestamp()) - interval '1 second' AS horizon,
               count(*) FILTER (WHERE query = '<insufficient privilege>') AS hidden
        FROM pg_stat_activity
        WHERE datname = current_database()
          AND pid <> pg_backend_pid()
          AND backend_type NOT IN ('autovacuum worker', 'walsender')
          AND (xact_start IS NOT NULL OR query = '<insufficient privilege>')
          AND state IS DISTINCT FROM 'idle in transaction (aborted)'
    )
    SELECT horizon, horizon::timestamp AS naive, hidden FROM open
    """
)
"""Every session of this database but the reader's own inside a transaction that can still
commit: ``xact_start`` is the ``now()`` its rows get, whether or not it wrote yet. Autovacuum and
WAL senders write no rows; aborted transactions cannot commit. Sessions of other roles show
neither state nor start unless the reader has pg_read_all_stats: they are counted apart. The
second of margin covers the moment between a transaction taking its start time and showing it
here, and a transaction starting after this query gets a later ``now()`` than the horizon."""


@dataclass(frozen=True)
class CommitHorizon:
    """A time below which every transaction open when the run began had started.

    A transaction's rows get its start as ``now()``; one that commits after the read could
    still write rows with a cursor at or after the horizon, never before it.
    """

    aware: dt.datetime
    """The horizon as a time-zone-aware value (``timestamptz`` cursors)."""
    naive: dt.datetime
    """The horizon in the source session's time zone (``timestamp`` cursors)."""

    def cap(self, position: Keyset) -> Keyset:
        """``position``, or the horizon when ``position`` is at or beyond it."""
        value = position.cursor
        if isinstance(value, dt.datetime):
            horizon = self.aware if value.tzinfo is not None else self.naive
            return position if value < horizon else Keyset(horizon)
        if isinstance(value, dt.date):
            day = self.naive.date()
            return position if value < day else Keyset(day)
        return position


def commit_horizon(
    connection: sa.Connection, plan: SyncPlan, relation: SourceRelation
) -> CommitHorizon | None:
    """The horizon of a PostgreSQL or MySQL source with a time cursor, read before the rows are.

    ``None`` for other sources and for cursors known not to be times. The database's clock
    is used, never this machine's.
    """
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "mysql") or plan.cursor is None:
        return None
    destination = plan.destination_cursor
    known = (destination and destination in plan.object_field_types) or (
        plan.cursor in relation.types
    )
    if known and not _cursor_is_time(plan, relation, None):
        return None
    if dialect == "mysql":
        return _innodb_horizon(connection, plan)
    row = connection.execute(_OPEN_TRANSACTIONS).one()
    connection.rollback()
    if row.hidden:
        logger.warning(
            "sync %s (%r): %d sessions of the source database are not visible to its user; "
            "a transaction of theirs that commits late may be missed unless lookback covers "
            "it (grant pg_read_all_stats to the source user)",
            plan.sync_id,
            plan.sync_name,
            row.hidden,
        )
    return CommitHorizon(row.horizon, row.naive)


_MARGIN = dt.timedelta(seconds=1)

_INNODB_TRANSACTIONS = sa.text(
    """
    SELECT min(trx_started) AS oldest, NOW(6) AS now, UTC_TIMESTAMP(6) AS utc,
           @@session.time_zone AS zone
    FROM information_schema.innodb_trx
    WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_state <> 'ROLLING BACK'
    """
)
"""InnoDB's open transactions: one starts at its first InnoDB statement, whose ``NOW()`` (the
statement's start, a little earlier) is its rows' cursor; ``trx_started`` is in whole seconds
of the server's system time zone, which the second of margin and ``time_zone = SYSTEM`` cover."""


def _innodb_horizon(connection: sa.Connection, plan: SyncPlan) -> CommitHorizon | None:
    try:
        row = connection.execute(_INNODB_TRANSACTIONS).one()
    except sa.exc.DBAPIError as error:
        connection.rollback()
        logger.warning(
            "sync %s (%r): cannot see the source's open transactions (%s); a transaction that "
            "commits late may be missed unless lookback covers it (grant PROCESS)",
            plan.sync_id,
            plan.sync_name,
            _first_line(error),
        )
        return None
    connection.rollback()
    if row.zone != "SYSTEM":
        logger.warning(
            "sync %s (%r): the source session's time_zone is %s, not SYSTEM: late commits "
            "are not guarded; use lookback",
            plan.sync_id,
            plan.sync_name,
            row.zone,
        )
        return None
    age = max(row.now - row.oldest, dt.timedelta(0)) if row.oldest else dt.timedelta(0)
    naive = row.now - age - _MARGIN
    return CommitHorizon((row.utc - age - _MARGIN).replace(tzinfo=dt.UTC), naive)


# --- batch readers -------------------------------------------------------------------------


def _to_arrow(values: list[Any]) -> pa.Array:
    """One column of driver values as an Arrow array (JSON-like values as JSON text)."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, dict | list | tuple):
        return pa.array(
            [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in values],
            type=pa.string(),
        )
    if isinstance(sample, uuid.UUID):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _rows_to_batch(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.RecordBatch.from_arrays([_to_arrow(list(c)) for c in columns], names=list(names))


class _MoneyLoader:
    """psycopg's loader of ``money`` text in the C locale (``-$1,234.56``) as an exact Decimal."""

    format = 0

    def __init__(self, oid: int, context: Any = None) -> None:
        pass

    def load(self, data: Any) -> decimal.Decimal:
        return decimal.Decimal(bytes(data).decode().replace("$", "").replace(",", ""))


def _exact_postgres_session(connection: sa.Connection) -> None:
    """A psycopg session that reads what the ADBC reader reads: interval as ISO 8601 text,
    money as exact decimals, inet, cidr and timetz as PostgreSQL's text."""
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return
    from psycopg.types.string import TextLoader

    connection.exec_driver_sql("SET intervalstyle = 'iso_8601'")
    connection.exec_driver_sql("SET lc_monetary = 'C'")
    adapters = connection.connection.driver_connection.adapters
    for name in ("interval", "inet", "cidr", "timetz"):
        adapters.register_loader(name, TextLoader)
    adapters.register_loader("money", _MoneyLoader)


def _sqlalchemy_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Any dialect: a server-side cursor, ``batch_size`` rows at a time."""
    with engine.connect() as connection:
        _exact_postgres_session(connection)
        result = connection.execution_options(stream_results=True, yield_per=batch_size).execute(
            query
        )
        names = list(result.keys())
        for rows in result.partitions(batch_size):
            yield _rows_to_batch(names, rows)


def _positional(
    engine: sa.Engine, query: sa.Select, paramstyle: str = "qmark"
) -> tuple[str, list[Any]]:
    """The query as SQL text with positional placeholders and its parameters, in order."""
    dialect = type(engine.dialect)(paramstyle=paramstyle)
    compiled = query.compile(dialect=dialect)
    params = compiled.params
    return str(compiled), [params[name] for name in compiled.positiontup or ()]


def _sqlite_parameter(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


class _TypeChanged(Exception):
    """A fast reader met a value whose type differs from the column's first batch."""


def _adbc_sqlite_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """SQLite through ADBC: Arrow batches straight from the file, no Python per row."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite

    sql, params = _positional(engine, query)
    # a source is only read: opened read-only, a missing file is an error, never created
    uri = f"file:{quote(str(Path(engine.url.database).absolute()))}?mode=ro"
    with adbc_sqlite.connect(uri) as connection, connection.cursor() as cursor:
        cursor.adbc_statement.set_options(
            **{"adbc.sqlite.query.batch_rows": str(batch_size)}
        )
        cursor.execute(sql, [_sqlite_parameter(p) for p in params] or None)
        reader = cursor.fetch_record_batch()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowInvalid) as error:
                if "Type mismatch" in str(error):
                    raise _TypeChanged(str(error)) from error
                raise
            if batch.num_rows:
                yield batch


def _duckdb_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """DuckDB natively: Arrow record batches from a bound-parameter query."""
    sql, params = _positional(engine, query)
    with engine.connect() as connection:
        native = connection.connection.driver_connection
        reader = native.execute(sql, params).to_arrow_reader(batch_size)
        for batch in reader:
            if batch.num_rows:
                yield batch


_MONEY_SCALE = 2
"""Fractional digits of PostgreSQL's ``money`` (``lc_monetary``'s; 2 for nearly every locale)."""


class _UnreadableType(Exception):
    """The ADBC reader hands a PostgreSQL type as its binary wire form, which is not decoded."""


def _pg_type(field: pa.Field) -> str:
    metadata = field.metadata or {}
    name = metadata.get(b"ADBC:postgresql:typname") or metadata.get(b"POSTGRESQL:type")
    return (name or b"").decode()


def _pg_numeric(array: pa.Array, typmod: int) -> pa.Array:
    """PostgreSQL numeric text as exact decimals: ``numeric(p, s)`` as ``decimal(p, s)``.

    NaN and infinities stay text (no decimal holds them; a number field then refuses them).
    """
    text = array.cast(pa.string())
    finite = pc.match_substring_regex(text, r"^-?[0-9]+(\.[0-9]+)?$")
    if not pc.all(pc.or_kleene(finite, pc.is_null(text))).as_py():
        return text
    if typmod >= 4 and ((typmod - 4) >> 16) & 0xFFFF <= 76:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        kind = pa.decimal128 if precision <= 38 else pa.decimal256
        return text.cast(kind(precision, scale))
    return field_types.decimal_from_text(text)


def _inet_text(wire: bytes, *, cidr: bool) -> str:
    """inet/cidr's binary form (family, bits, is_cidr, length, address) as PostgreSQL's text."""
    family, bits, _, _ = wire[:4]
    address = ipaddress.ip_address(wire[4:])
    full = 32 if family == 2 else 128
    return str(address) if bits == full and not cidr else f"{address}/{bits}"


def _timetz_text(wire: bytes) -> str:
    """timetz's binary form (microseconds, zone in seconds west of UTC) as PostgreSQL's text
    (``12:34:56.789+05:30``, ``00:00:00-08``)."""
    micros, zone = struct.unpack("!qi", wire)
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    offset_minutes, offset_seconds = divmod(abs(zone), 60)
    offset_hours, offset_minute = divmod(offset_minutes, 60)
    text += f"{'+' if zone <= 0 else '-'}{offset_hours:02d}"
    if offset_minute or offset_seconds:
        text += f":{offset_minute:02d}"
    return text + (f":{offset_seconds:02d}" if offset_seconds else "")


_PG_WIRE_TEXT: dict[str, Callable[[bytes], str]] = {
    "inet": lambda wire: _inet_text(wire, cidr=False),
    "cidr": lambda wire: _inet_text(wire, cidr=True),
    "macaddr": lambda wire: ":".join(f"{b:02x}" for b in wire),
    "macaddr8": lambda wire: ":".join(f"{b:02x}" for b in wire),
    "timetz": _timetz_text,
}


def _pg_column(field: pa.Field, array: pa.Array) -> pa.Array:
    """One ADBC column as values or canonical text, never as wire bytes."""
    kind = _pg_type(field)
    if isinstance(array.type, pa.BaseExtensionType):
        storage = array.storage
        if kind == "numeric":
            typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))
            return _pg_numeric(storage, typmod)
        if kind == "uuid" or isinstance(array.type, pa.UuidType):
            return pa.array(
                [None if v is None else str(uuid.UUID(bytes=v)) for v in storage.to_pylist()],
                pa.string(),
            )
        if pa.types.is_string(storage.type) or pa.types.is_large_string(storage.type):
            return storage  # json, jsonb: their text
        decode = _PG_WIRE_TEXT.get(kind)
        if decode is None:
            raise _UnreadableType(f"column {field.name!r} has type {kind}")
        return pa.array(
            [None if v is None else decode(v) for v in storage.to_pylist()], pa.string()
        )
    if kind == "money":  # cents as int64
        cents = array.cast(pa.int64())
        return pa.Array.from_buffers(
            pa.decimal128(19, _MONEY_SCALE), len(cents), cents.cast(pa.decimal128(19, 0)).buffers()
        )
    return array


def _pg_values(batch: pa.RecordBatch) -> pa.RecordBatch:
    """An ADBC PostgreSQL batch with exact values: see :func:`_pg_column`."""
    arrays = [
        _pg_column(field, column)
        for field, column in zip(batch.schema, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _adbc_postgres_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """PostgreSQL through ADBC: the binary COPY protocol straight into Arrow."""
    import adbc_driver_postgresql.dbapi as adbc_postgres

    sql, params = _positional(engine, query, paramstyle="numeric_dollar")
    with adbc_postgres.connect(_libpq_uri(engine.url)) as connection, connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")  # a source is only read (custom_join too)
        cursor.execute(sql, params or None)
        for batch in cursor.fetch_record_batch():
            if batch.num_rows:
                yield _pg_values(batch)


def _libpq_uri(url: sa.URL) -> str:
    """The URL as libpq reads it: its query (``options``, ``sslmode``...) percent-encoded."""
    base = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    query = urlencode(url.query, doseq=True, quote_via=quote)
    return f"{base}?{query}" if query else base


def _adbc_postgres_available(engine: sa.Engine) -> bool:
    if engine.dialect.driver not in ("psycopg", "psycopg2"):
        return False
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def _adbc_sqlite_available(engine: sa.Engine) -> bool:
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query:
        return False
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def read_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str | None,
    primary_key: str | None,
    bounds: ReadBounds,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """Stream the source rows after ``bounds`` as Arrow record batches of ``batch_size`` rows.

    A fast reader whose column types change mid-stream (SQLite's dynamic typing) hands over to
    the generic reader, which continues strictly after the last row it yielded.
    """
    query = keyset_query(
        relation, columns, cursor=cursor, primary_key=primary_key, bounds=bounds
    )
    dialect = engine.dialect.name
    if dialect == "duckdb":
        yield from _rebatch(_duckdb_batches(engine, query, batch_size), batch_size)
        return
    if dialect == "postgresql" and _adbc_postgres_available(engine):
        yield from _rebatch(
            _resumable(
                _adbc_postgres_batches(engine, query, batch_size),
                lambda: _sqlalchemy_batches(engine, query, batch_size),
            ),
            batch_size,
        )
        return
    if dialect != "sqlite" or not _adbc_sqlite_available(engine):
        yield from _sqlalchemy_batches(engine, query, batch_size)
        return
    last: Keyset | None = None
    yielded = 0
    try:
        for batch in _adbc_sqlite_batches(engine, query, batch_size):
            if cursor is not None and batch.num_rows:
                last = Keyset(
                    batch.column(columns.index(cursor))[-1].as_py(),
                    None
                    if primary_key is None
                    else batch.column(columns.index(primary_key))[-1].as_py(),
                )
            yielded += 1
            yield batch
        return
    except _TypeChanged as error:
        if yielded and cursor is None:
            raise SourceSchemaError(f"SQLite column types vary: {error}") from None
        logger.info("SQLite column types vary (%s); reading on without ADBC", error)
    resumed = bounds if last is None else ReadBounds(after=last, from_cursor=bounds.from_cursor)
    query = keyset_query(
        relation, columns, cursor=cursor, primary_key=primary_key, bounds=resumed
    )
    yield from _sqlalchemy_batches(engine, query, batch_size)


def read_null_cursor_batches(
    engine: sa.Engine,
    relation: SourceRelation,
    columns: Sequence[str],
    *,
    cursor: str,
    primary_key: str | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[pa.RecordBatch]:
    """The rows whose cursor is NULL, ordered by the primary key, one page of ``batch_size``
    rows per query after the last key read (all in one query without a primary key)."""
    after: Any = None
    while True:
        query = null_cursor_query(
            relation,
            columns,
            cursor=cursor,
            primary_key=primary_key,
            after_key=after,
            limit=None if primary_key is None else batch_size,
        )
        rows = 0
        for batch in _rebatch(_page_batches(engine, query, batch_size), batch_size):
            rows += batch.num_rows
            if primary_key is not None:
                after = last_value(batch.column(columns.index(primary_key)))
            yield batch
        if primary_key is None or rows < batch_size:
            return


def _page_batches(
    engine: sa.Engine, query: sa.Select, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """One query's batches through the fastest reader of the dialect."""
    dialect = engine.dialect.name
    generic = lambda: _sqlalchemy_batches(engine, query, batch_size)  # noqa: E731
    if dialect == "duckdb":
        yield from _duckdb_batches(engine, query, batch_size)
    elif dialect == "postgresql" and _adbc_postgres_available(engine):
        yield from _resumable(_adbc_postgres_batches(engine, query, batch_size), generic)
    elif dialect == "sqlite" and _adbc_sqlite_available(engine):
        yield from _resumable(_adbc_sqlite_batches(engine, query, batch_size), generic)
    else:
        yield from generic()


def last_value(column: pa.Array) -> Any:
    """The last value of a column, as the source compares it."""
    if isinstance(column.type, pa.BaseExtensionType):
        value = column.storage[-1].as_py()
        # ADBC reads PostgreSQL numeric as opaque text: bind it back as a number
        if isinstance(value, str) and "numeric" in str(column.type):
            return decimal.Decimal(value)
        return value
    return column[-1].as_py()


def _resumable(
    fast: Iterator[pa.RecordBatch], fallback: Callable[[], Iterator[pa.RecordBatch]]
) -> Iterator[pa.RecordBatch]:
    """The fast reader, or the fallback when the fast one fails before its first batch."""
    try:
        first = next(fast)
    except StopIteration:
        return
    except Exception as error:  # noqa: BLE001 - e.g. a type ADBC cannot read
        logger.info("reading with ADBC failed (%s); reading through SQLAlchemy", error)
        yield from fallback()
        return
    yield first
    yield from fast


def _rebatch(batches: Iterator[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``batch_size`` rows (the last one smaller), whatever the reader gives."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows == batch_size:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= batch_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, batch_size).combine_chunks().to_batches()[0]
            rest = table.slice(batch_size)
            pending = [b for b in rest.combine_chunks().to_batches() if b.num_rows]
            held = rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


# --- reading ahead -------------------------------------------------------------------------

_DONE = object()
_EMPTY = object()


@dataclass
class _Failed:
    error: BaseException


class _Handoff:
    """One slot between the reading thread and the caller.

    The reader fills the slot, then waits until the caller takes the item before it reads on:
    at most two batches are held, the one being written and the one being read.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: Any = _EMPTY
        self._closed = False

    def put(self, item: Any) -> bool:
        """Hand over ``item``; ``False`` when the caller stopped taking."""
        with self._ready:
            self._item = item
            self._ready.notify_all()
            while self._item is not _EMPTY and not self._closed:
                self._ready.wait()
            return not self._closed

    def take(self) -> Any:
        """The next item, once the reader has put it."""
        with self._ready:
            while self._item is _EMPTY:
                self._ready.wait()
            item, self._item = self._item, _EMPTY
            self._ready.notify_all()
            return item

    def close(self) -> None:
        """Stop the reader at its next hand-over."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()


def read_ahead(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Read the next batch in a thread while the caller writes this one.

    The source connection lives entirely in the reading thread; closing this generator stops it.
    """
    handoff = _Handoff()

    def produce() -> None:
        try:
            for batch in batches:
                if not handoff.put(batch):
                    break
                del batch  # not held while reading the next one
            else:
                handoff.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            handoff.put(_Failed(error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="sync-pipelines-read", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.take()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
            del item
    finally:
        handoff.close()
        thread.join()
