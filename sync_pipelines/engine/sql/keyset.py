"""Positions in the source and the queries that read from them: keyset, NULL cursor, backfill
chunks; the read bounds, and the commit horizon that guards late commits."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sync_pipelines.common.error_text import first_line
from sync_pipelines.common.typed_values import decode_value, encode_value
from sync_pipelines.contract.models import (
    CursorPosition,
    FieldType,
    NullCursor,
    SyncMode,
)
from sync_pipelines.engine.errors import NullCursorError
from sync_pipelines.engine.plan import SyncPlan
from sync_pipelines.engine.sql.relation import SourceRelation, source_schema

logger = logging.getLogger("sync_pipelines.engine")


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

    The pass runs only when a row has a NULL cursor (``SELECT 1 ... WHERE cursor IS NULL
    LIMIT 1``, which an index on the cursor answers at once), not every run whatever the rows.

    Raises:
        NullCursorError: rows have a NULL cursor and the policy is ``fail``, or the sync appends
            without a primary key (it could not tell them apart from one run to the next).
    """
    if plan.cursor is None:
        return False
    source = relation.selectable
    is_null = source.c[plan.cursor].is_(None)
    probe = sa.select(sa.literal_column("1")).select_from(source).where(is_null).limit(1)
    if connection.execute(probe).first() is None:
        return False
    keyless_append = plan.mode is SyncMode.INCREMENTAL_APPEND and plan.primary_key is None
    if plan.null_cursor is NullCursor.INCLUDE and not keyless_append:
        return True
    count = connection.execute(
        sa.select(sa.func.count()).select_from(source).where(is_null)
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
    schema = source_schema(connection, plan.source_namespace)
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
    upto_key: Any = None,
) -> sa.Select:
    """``SELECT columns FROM source WHERE pk > :key ORDER BY pk LIMIT n``: one chunk in key
    order, which the key's index serves without sorting the table.

    ``from_cursor`` (``max_age_days``) bounds the cursor; rows whose cursor is NULL are kept
    with ``include_null_cursor`` and left out otherwise. ``upto_key`` ends the read at that
    key, included (a range of a parallel backfill).
    """
    source = relation.selectable
    key = source.c[primary_key]
    c = source.c[cursor]
    query = sa.select(*[source.c[name] for name in columns])
    if after_key is not None:
        query = query.where(key > sa.bindparam("after_key", after_key))
    if upto_key is not None:
        query = query.where(key <= sa.bindparam("upto_key", upto_key))
    if from_cursor is not None:
        bounded = c >= sa.bindparam("from_cursor", from_cursor)
        query = query.where(sa.or_(bounded, c.is_(None)) if include_null_cursor else bounded)
    elif not include_null_cursor:
        query = query.where(c.is_not(None))
    return query.order_by(key).limit(limit)


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
            first_line(error),
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
