"""Deletes without CDC: find the end customer's destination keys that the source no longer has.

The key space of the destination's live rows is split into ranges at the destination's key
quantiles (``row_number()`` over the key, on all four databases). Each range is compared by a
count and a checksum of its keys computed in both databases (integers: ``sum(key % p)`` for two
primes; text: ``sum(length(key))``), one grouped query per side per split. Only ranges that
differ are split again, down to ranges of at most ``leaf_size`` destination keys, whose keys are
listed and looked up in the source by equality (``key IN (...)``), so a collation that orders
differently in the source can cost reads, never a wrong delete. Memory follows the fan-out, the
depth and the leaves that differ, not the table; reads follow the changed ranges.

:func:`apply_deletes` first counts what would go, refuses more than ``max_delete_fraction`` of
the end customer's rows unless ``allow_mass_delete``, then deletes (``hard``) or stamps
``_deleted_at`` (``soft``) in one destination transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sync_pipelines.contract.models import DeleteMode, FieldType, RunStatus
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import EngineError
from sync_pipelines.engine.plan import DELETED_AT, SyncPlan
from sync_pipelines.engine.sql.relation import source_relation
from sync_pipelines.engine.write import destination_schema, key_collation, table_columns

__all__ = [
    "DeleteCheck",
    "MassDeleteError",
    "apply_deletes",
    "delete_check_due",
    "deleted_at_type",
]

DEFAULT_LEAF_SIZE = 2000
DEFAULT_FANOUT = 16
_IN_CHUNK = 500
_PRIMES = (1_000_003, 999_983)
_KEYS_KEPT = 100_000
"""Missing keys kept between counting and deleting; beyond, the leaves are listed again."""


class MassDeleteError(EngineError):
    """Detection would delete more than ``max_delete_fraction`` of the end customer's rows."""


@dataclass(frozen=True)
class DeleteCheck:
    """What one detection compared, listed and deleted."""

    rows_deleted: int
    destination_rows: int
    """The end customer's live destination rows before the deletes."""
    ranges_compared: int
    """Key ranges whose count and checksum were computed on both sides."""
    ranges_differing: int
    """Compared ranges whose count or checksum differed (descended into or listed)."""
    keys_listed: int
    """Destination keys read back to the runner (only those of differing leaves)."""


@dataclass(frozen=True)
class _Range:
    lo: Any
    lo_inclusive: bool
    hi: Any

    def where(self, key: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        low = key >= self.lo if self.lo_inclusive else key > self.lo
        return sa.and_(low, key <= self.hi)


def deleted_at_type(dialect: str) -> sa.types.TypeEngine:
    """The ``_deleted_at`` column's type on a destination dialect (a time-zone timestamp)."""
    return field_types.column_type(FieldType.TIMESTAMP, dialect, key=False)


class _Side:
    """One database's view of the key: its relation, filter, key expression and checksum."""

    def __init__(
        self,
        connection: sa.Connection,
        relation: sa.FromClause,
        key: sa.ColumnElement[Any],
        live: sa.ColumnElement[bool],
        kind: str,
    ) -> None:
        self.connection = connection
        self.relation = relation
        self.live = live
        dialect = connection.dialect.name
        self.raw_key = key
        text_key = kind == "text"
        text_key_cast = text_key and not isinstance(getattr(key, "type", None), sa.String)
        if text_key_cast:
            key = sa.cast(key, sa.String)
        if text_key and dialect == "postgresql":
            key = key.collate("C")  # byte order, as SQLite and DuckDB compare
        elif text_key and dialect == "mysql":  # code point order, NO PAD: the same order
            if not text_key_cast:
                key = sa.cast(key, sa.String)
            key = key.collate(key_collation(connection))
        self.key = key
        self.lookup = self.raw_key if not text_key_cast else key
        """What :meth:`present` compares by equality (the raw key, so its index serves)."""
        self.kind = kind
        self.length = sa.func.char_length if dialect in ("postgresql", "mysql") else sa.func.length

    def _checksums(self, key: sa.ColumnElement[Any]) -> list[sa.ColumnElement[Any]]:
        if self.kind == "integer":
            return [sa.func.sum(key % p) for p in _PRIMES]
        if self.kind == "text":
            return [sa.func.sum(self.length(key))]
        return []

    def aggregates(self, ranges: Sequence[_Range]) -> dict[int, tuple[int, ...]]:
        """Count and checksums per range (keyed by the range's index; empty ones left out)."""
        key = self.key
        bucket = sa.case(
            *[(r.where(key), index) for index, r in enumerate(ranges)], else_=-1
        ).label("bucket")
        inner = (
            sa.select(bucket, key.label("k"))
            .select_from(self.relation)
            .where(self.live, sa.or_(*[r.where(key) for r in ranges]))
            .subquery("ranges")
        )
        sums = self._checksums(inner.c.k)
        query = sa.select(inner.c.bucket, sa.func.count(), *sums).group_by(inner.c.bucket)
        return {
            int(row[0]): tuple(int(value or 0) for value in row[1:])
            for row in self.connection.execute(query)
        }

    def quantiles(self, within: _Range, count: int, parts: int) -> list[Any]:
        """Keys at every ``count / parts``-th position of the range (in key order)."""
        step = max(1, math.ceil(count / parts))
        numbered = (
            sa.select(
                self.key.label("k"),
                sa.func.row_number().over(order_by=self.key).label("n"),
            )
            .select_from(self.relation)
            .where(self.live, within.where(self.key))
            .subquery("numbered")
        )
        query = sa.select(numbered.c.k).where(numbered.c.n % step == 0).order_by(numbered.c.n)
        return [row[0] for row in self.connection.execute(query)]

    def keys(self, within: _Range) -> list[Any]:
        """The range's keys (a leaf: at most a few thousand)."""
        query = (
            sa.select(self.raw_key)
            .select_from(self.relation)
            .where(self.live, within.where(self.key))
        )
        return [row[0] for row in self.connection.execute(query)]

    def present(self, keys: Sequence[Any]) -> set[Any]:
        """Which of ``keys`` this side holds (equality, chunked)."""
        found: set[Any] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = list(keys[start : start + _IN_CHUNK])
            query = (
                sa.select(self.lookup)
                .select_from(self.relation)
                .where(self.live, self.lookup.in_(chunk))
            )
            found.update(_normal(row[0]) for row in self.connection.execute(query))
        return found


def _normal(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return value


def _key_kind(key_type: sa.types.TypeEngine | None) -> str:
    if isinstance(key_type, sa.Integer):
        return "integer"
    if isinstance(key_type, sa.String):
        return "text"
    return "count"


@dataclass
class _Leaf:
    range: _Range
    missing: list[Any] | None


class _Detector:
    def __init__(self, source: _Side, destination: _Side, *, leaf_size: int, fanout: int) -> None:
        self.source = source
        self.destination = destination
        self.leaf_size = leaf_size
        self.fanout = fanout
        self.compared = 0
        self.differing = 0
        self.listed = 0

    def differing_ranges(self, top: _Range, count: int) -> Iterator[_Range]:
        """Depth first: the leaves whose keys differ (memory: depth x fan-out ranges)."""
        pending = [(top, count)]
        while pending:
            within, n = pending.pop()
            if n <= self.leaf_size:
                yield within
                continue
            bounds = self.destination.quantiles(within, n, self.fanout)
            subranges: list[_Range] = []
            lo, inclusive = within.lo, within.lo_inclusive
            for bound in [*bounds, within.hi]:
                if subranges and bound == subranges[-1].hi:
                    continue
                subranges.append(_Range(lo, inclusive, bound))
                lo, inclusive = bound, False
            theirs = self.source.aggregates(subranges)
            ours = self.destination.aggregates(subranges)
            for index in reversed(range(len(subranges))):
                self.compared += 1
                mine = ours.get(index)
                if mine is None or mine == theirs.get(index):
                    continue  # no destination keys, or the same keys on both sides
                self.differing += 1
                pending.append((subranges[index], mine[0]))

    def missing(self, leaf: _Range) -> list[Any]:
        keys = [_normal(k) for k in self.destination.keys(leaf)]
        self.listed += len(keys)
        found = self.source.present(keys)
        return [k for k in keys if k not in found]


def apply_deletes(
    source: sa.Engine,
    destination: sa.Engine,
    plan: SyncPlan,
    *,
    allow_mass_delete: bool = False,
    leaf_size: int = DEFAULT_LEAF_SIZE,
    fanout: int = DEFAULT_FANOUT,
) -> DeleteCheck:
    """Delete (or soft-delete) the end customer's destination rows whose key left the source.

    Raises:
        MassDeleteError: more than ``plan.max_delete_fraction`` of the end customer's rows would
            go and ``allow_mass_delete`` is not set; nothing is deleted.
    """
    nothing = DeleteCheck(0, 0, 0, 0, 0)
    if plan.deletes is DeleteMode.IGNORE or plan.primary_key is None:
        return nothing
    key_name = plan.destination_primary_key
    assert key_name is not None  # plan_sync checks that the key is mapped
    schema = destination_schema(destination, plan.destination_namespace)
    with destination.connect() as probe:
        columns = table_columns(probe, plan.destination_table, schema)
    if not columns:
        return nothing
    soft = plan.deletes is DeleteMode.SOFT
    if soft and DELETED_AT not in columns:
        _add_deleted_at(destination, plan, schema)
    names = [plan.customer_field, key_name] + ([DELETED_AT] if soft else [])
    table = sa.table(plan.destination_table, *[sa.column(n) for n in names], schema=schema)
    live = table.c[plan.customer_field] == plan.customer_id
    if soft:
        live = sa.and_(live, table.c[DELETED_AT].is_(None))
    kind = _key_kind(columns.get(key_name))
    with source.connect() as source_connection, destination.connect() as connection:
        relation = source_relation(source_connection, plan)
        source_key = relation.selectable.c[plan.primary_key]
        source_kind = _key_kind(relation.types.get(plan.primary_key)) if relation.types else kind
        if source_kind != kind and not (kind == "text" and source_kind == "integer"):
            kind = "count"
        theirs = _Side(
            source_connection, relation.selectable, source_key, source_key.is_not(None), kind
        )
        ours = _Side(connection, table, table.c[key_name], live, kind)
        detector = _Detector(theirs, ours, leaf_size=leaf_size, fanout=fanout)
        bounds = connection.execute(
            sa.select(sa.func.count(), sa.func.min(ours.key), sa.func.max(ours.key))
            .select_from(table)
            .where(live)
        ).one()
        total = int(bounds[0])
        if not total:
            return nothing
        top = _Range(bounds[1], True, bounds[2])
        detector.compared += 1
        same = theirs.aggregates([top]).get(0) == ours.aggregates([top]).get(0)
        leaves: list[_Leaf] = []
        doomed = kept = 0
        if not same:
            detector.differing += 1
            for leaf in detector.differing_ranges(top, total):
                missing = detector.missing(leaf)
                if not missing:
                    continue
                doomed += len(missing)
                keep = kept + len(missing) <= _KEYS_KEPT
                kept += len(missing) if keep else 0
                leaves.append(_Leaf(leaf, missing if keep else None))
        source_connection.rollback()  # the source's read-only transaction ends here
        check = DeleteCheck(0, total, detector.compared, detector.differing, detector.listed)
        if not doomed:
            return check
        limit = plan.max_delete_fraction * total
        if doomed > limit and not allow_mass_delete:
            raise MassDeleteError(
                f"sync {plan.sync_id} ({plan.sync_name!r}): {doomed} of the {total} rows of end "
                f"customer {plan.customer_id!r} in {plan.destination_label} are no longer in the "
                f"{plan.source_label}; that is more than max_delete_fraction "
                f"{plan.max_delete_fraction:g}, so nothing was deleted. Check the source, then "
                "rerun with --allow-mass-delete (allow_mass_delete) to delete them"
            )
        deleted = 0
        now = dt.datetime.now(dt.UTC)
        if destination.dialect.name in ("mysql", "sqlite"):  # naive UTC, as the writers store it
            now = now.replace(tzinfo=None)
        stamp = sa.bindparam("now", now, type_=deleted_at_type(destination.dialect.name))
        connection.rollback()  # end the comparison's read transaction, then write in one
        with connection.begin():
            for leaf in leaves:
                missing = leaf.missing if leaf.missing is not None else detector.missing(leaf.range)
                for start in range(0, len(missing), _IN_CHUNK):
                    chunk = missing[start : start + _IN_CHUNK]
                    where = sa.and_(live, table.c[key_name].in_(chunk))
                    if soft:
                        statement: sa.Executable = (
                            table.update().where(where).values({DELETED_AT: stamp})
                        )
                    else:
                        statement = table.delete().where(where)
                    count = connection.execute(statement).rowcount
                    # duckdb_engine reports -1: the keys were live rows of this run's customer
                    deleted += count if count >= 0 else len(chunk)
        return DeleteCheck(deleted, total, detector.compared, detector.differing, detector.listed)


def delete_check_due(client: SyncApi, plan: SyncPlan) -> bool:
    """Whether this run checks for deletes: the sync's ``deletes`` is set and this is every
    ``delete_check_every``-th run (counted by the sync's completed runs)."""
    if plan.deletes is DeleteMode.IGNORE or plan.primary_key is None:
        return False
    if plan.delete_check_every <= 1:
        return True
    completed = client.list_runs(plan.sync_id, status=RunStatus.COMPLETED)
    return len(completed) % plan.delete_check_every == 0


def _add_deleted_at(engine: sa.Engine, plan: SyncPlan, schema: str | None) -> None:
    """Add ``_deleted_at`` to a table written before the sync turned ``soft``."""
    with engine.begin() as connection:
        preparer = connection.dialect.identifier_preparer
        table = sa.table(plan.destination_table, schema=schema)
        column_type = deleted_at_type(engine.dialect.name).compile(dialect=connection.dialect)
        connection.execute(
            sa.text(
                f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                f"{preparer.quote(DELETED_AT)} {column_type}"
            )
        )
