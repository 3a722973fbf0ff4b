"""The destination table and the portable writer: ensure the table, stage, upsert or swap.

Every batch goes through a staging relation and one set-based statement keyed on
``(end_customer_id_field, primary key)``, in one transaction:

* ``upsert`` (incremental_update): insert new keys, update existing ones;
* ``append`` (incremental_append): insert keys not yet present (a re-read after a crash adds
  nothing twice);
* ``stage`` + ``swap`` (full_overwrite, full refresh): stage every batch, then in one transaction
  delete that end customer's rows and insert the staged ones; other customers' rows stay.

:class:`BatchWriter` is the portable path (a temporary table filled by executemany); the
dialect modules of this package subclass it with their fast path (DuckDB scans Arrow,
PostgreSQL COPYs), and :mod:`~sync_pipelines.engine.write.registry` picks one by dialect.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from sync_pipelines.contract.models import FieldType
from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import DestinationTypeConflictError, SourceSchemaError
from sync_pipelines.engine.plan import SyncPlan

__all__ = [
    "BatchWriter",
    "DestinationColumn",
    "WriteCounts",
    "column_type_names",
    "destination_schema",
    "destination_table",
    "ensure_table",
    "existing_table",
    "key_collation",
    "table_columns",
]

_names = itertools.count(1)
_RANGED_KEY_TYPES = (sa.Integer, sa.Numeric, sa.Date, sa.DateTime)


@dataclass(frozen=True)
class WriteCounts:
    """Rows a write inserted, updated (values changed), found unchanged and (swap) deleted."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    """Rows whose key was present and that left it as it was (the same values; for an
    append, any present key): not written, not counted as updated."""

    @property
    def written(self) -> int:
        """Rows inserted or updated."""
        return self.inserted + self.updated

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.deleted + other.deleted,
            self.unchanged + other.unchanged,
        )


@dataclass(frozen=True)
class DestinationColumn:
    """A destination column: its name, database type and the object field type, if declared."""

    name: str
    type: sa.types.TypeEngine
    field_type: FieldType | None = None


# --- the table -----------------------------------------------------------------------------


def destination_schema(engine: sa.Engine | sa.Connection, namespace: str | None) -> str | None:
    """The SQL schema of an object's namespace (SQLite has one; MySQL's is the database)."""
    dialect = engine.dialect.name
    if not namespace or dialect == "sqlite":
        return None
    if dialect == "mysql" and namespace == engine.engine.url.database:
        return None
    return namespace


def _desired_columns(
    plan: SyncPlan, dialect: str, mapped: pa.Schema | None
) -> list[DestinationColumn]:
    """The customer column, the object's fields, then written columns it does not declare."""
    key = plan.destination_primary_key
    columns = [
        DestinationColumn(
            plan.customer_field, sa.String(field_types.KEY_STRING_LENGTH), FieldType.STRING
        )
    ]
    for field in plan.object_fields:
        columns.append(
            DestinationColumn(
                field.name,
                field_types.column_type(field.type, dialect, key=field.name == key),
                field.type,
            )
        )
    known = {column.name for column in columns}
    if mapped is not None:
        for arrow_field in mapped:
            if arrow_field.name not in known:
                columns.append(
                    DestinationColumn(
                        arrow_field.name,
                        field_types.column_type_for_arrow(
                            arrow_field.type, dialect, key=arrow_field.name == key
                        ),
                        field_types.field_type_for_arrow(arrow_field.type),
                    )
                )
                known.add(arrow_field.name)
    return columns


_UNINDEXED_DIALECTS = {"duckdb"}
"""Dialects whose writer keeps the keys unique itself, without a primary key or unique index.

DuckDB's writer upserts by delete + insert: an index there slows a load of 1M rows by a
quarter, and while a table has one, DuckDB's checkpoint never reclaims deleted rows.
"""


def destination_table(
    plan: SyncPlan, dialect: str, schema: str | None, columns: Sequence[DestinationColumn]
) -> sa.Table:
    """The SQLAlchemy table of the object: primary key ``(customer column, primary key)``.

    The key columns are ``NOT NULL``; the constraint itself is left out on the dialects of
    ``_UNINDEXED_DIALECTS``.
    """
    key = plan.destination_primary_key
    keys = [plan.customer_field, key] if key else []
    table_columns = [
        sa.Column(column.name, column.type, nullable=column.name not in keys) for column in columns
    ]
    indexed = keys and dialect not in _UNINDEXED_DIALECTS
    constraints = [sa.PrimaryKeyConstraint(*keys)] if indexed else []
    return sa.Table(
        plan.destination_table, sa.MetaData(), *table_columns, *constraints, schema=schema
    )


def _has_unique_key(
    inspector: sa.Inspector, table: str, schema: str | None, keys: set[str]
) -> bool:
    primary = inspector.get_pk_constraint(table, schema=schema) or {}
    if set(primary.get("constrained_columns") or ()) == keys:
        return True
    try:
        uniques = inspector.get_unique_constraints(table, schema=schema)
    except NotImplementedError:
        uniques = []
    if any(set(u["column_names"]) == keys for u in uniques):
        return True
    try:
        indexes = inspector.get_indexes(table, schema=schema)
    except NotImplementedError:
        indexes = []
    return any(i.get("unique") and set(i["column_names"]) == keys for i in indexes)


# --- key collations (MySQL, MariaDB) ---------------------------------------------------------

_EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")
"""Binary collations without PAD SPACE, by server: MariaDB 10.2+, MySQL 8.0.17+.

``utf8mb4_bin`` is PAD SPACE on both (``'x' = 'x '``); the default ``*_ci`` collations also
merge ``a``/``A`` and ``ss``/``ß``.
"""


def _exact_collation_name(name: str | None) -> bool:
    """Whether a column collation compares exactly (``None``: not a text column)."""
    if name is None or name == "binary":
        return True
    return name.endswith("_nopad_bin") or name.endswith("_0900_bin")


def key_collation(connection: sa.Connection) -> str:
    """The collation this MySQL/MariaDB server compares key text exactly with.

    Checked on the server: the collation must exist and tell ``'x'`` from ``'x '`` and ``'a'``
    from ``'A'``.

    Raises:
        DestinationTypeConflictError: the server has no such collation (MySQL before 8.0.17).
    """
    for name in _EXACT_COLLATIONS:
        found = connection.execute(
            sa.text("SELECT 1 FROM information_schema.COLLATIONS WHERE COLLATION_NAME = :name"),
            {"name": name},
        ).first()
        if found is None:
            continue
        same = connection.execute(
            sa.text(
                f"SELECT (_utf8mb4'x' COLLATE {name}) = _utf8mb4'x ', "
                f"(_utf8mb4'a' COLLATE {name}) = _utf8mb4'A'"
            )
        ).one()
        if not any(same):
            return name
    raise DestinationTypeConflictError(
        "this MySQL server has no binary NO PAD collation (utf8mb4_nopad_bin on MariaDB 10.2+, "
        "utf8mb4_0900_bin on MySQL 8.0.17+): end customer ids and text keys differing only "
        "in case or trailing spaces would be merged"
    )


def _with_key_collation(
    columns: list[DestinationColumn], keys: set[str], collation: str
) -> list[DestinationColumn]:
    """The key columns of text types with ``collation``; other columns as they are."""
    collated = []
    for column in columns:
        if column.name in keys and isinstance(column.type, sa.String):
            column_type = column.type.copy()
            column_type.collation = collation
            column = DestinationColumn(column.name, column_type, column.field_type)
        collated.append(column)
    return collated


def _check_key_collations(
    connection: sa.Connection, plan: SyncPlan, schema: str | None, keys: set[str]
) -> None:
    """Refuse an existing table whose key columns compare text inexactly (merging keys).

    Raises:
        DestinationTypeConflictError: naming the table, the column and its collation.
    """
    rows = connection.execute(
        sa.text(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"
        ),
        {"schema": schema, "table": plan.destination_table},
    ).all()
    for name, collation in rows:
        if name in keys and not _exact_collation_name(collation):
            exact = key_collation(connection)
            raise DestinationTypeConflictError(
                f"key column {name!r} of destination table {plan.destination_label} has "
                f"collation {collation}, which treats distinct values as equal (case, "
                f"trailing spaces): end customers or keys would be merged; nothing was written. "
                f"Convert the column to COLLATE {exact} (after checking that no values merged) "
                f"or write to a new table"
            )


_DUCKDB_TYPES: tuple[tuple[str, sa.types.TypeEngine], ...] = (
    ("TIMESTAMP WITH TIME ZONE", sa.DateTime(timezone=True)),
    ("TIMESTAMP", sa.DateTime()),
    ("DATE", sa.Date()),
    ("TIME", sa.Time()),
    ("DECIMAL", sa.Numeric()),
    ("DOUBLE", sa.Double()),
    ("FLOAT", sa.Float()),
    ("REAL", sa.Float()),
    ("BOOLEAN", sa.Boolean()),
    ("JSON", sa.JSON()),
    ("BLOB", sa.LargeBinary()),
    ("INT", sa.BigInteger()),  # TINYINT ... HUGEINT, UBIGINT
    ("VARCHAR", sa.Text()),
    ("UUID", sa.Text()),
)


def _duckdb_type(name: str) -> sa.types.TypeEngine:
    upper = name.upper()
    sized = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if sized:
        return sa.Numeric(int(sized[1]), int(sized[2]))
    for prefix, column_type in _DUCKDB_TYPES:
        if upper.startswith(prefix) or (prefix == "INT" and "INT" in upper):
            return column_type
    return sa.types.NullType()


def table_columns(
    connection: sa.Connection, table: str, schema: str | None
) -> dict[str, sa.types.TypeEngine] | None:
    """An existing table's column types by name (``None``: no such table).

    DuckDB is asked directly: duckdb_engine's PostgreSQL-style reflection takes ~0.1 s a table.
    """
    if connection.dialect.name == "duckdb":
        rows = connection.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position"
            ),
            {"schema": schema or "main", "table": table},
        ).all()
        return {name: _duckdb_type(kind) for name, kind in rows} or None
    inspector = sa.inspect(connection)
    if not inspector.has_table(table, schema=schema):
        return None
    columns = inspector.get_columns(table, schema=schema)
    return {column["name"]: column["type"] for column in columns}


def column_type_names(engine: sa.Engine, plan: SyncPlan) -> dict[str, str]:
    """The destination table's column types as the database names them (empty: no table)."""
    schema = destination_schema(engine, plan.destination_namespace)
    with engine.connect() as connection:
        if connection.dialect.name == "duckdb":
            rows = connection.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE "
                    "table_schema = :schema AND table_name = :table ORDER BY ordinal_position"
                ),
                {"schema": schema or "main", "table": plan.destination_table},
            ).all()
            return dict(rows)
        found = table_columns(connection, plan.destination_table, schema) or {}
        names = {}
        for name, kind in found.items():
            try:
                names[name] = kind.compile(dialect=connection.dialect)
            except sa.exc.CompileError:  # a type SQLAlchemy reflected as NullType
                names[name] = str(kind)
        return names


def ensure_table(engine: sa.Engine, plan: SyncPlan, mapped: pa.Schema | None) -> sa.Table:
    """Create the destination table when missing, or add new columns; check types first.

    Nothing is changed when an existing column conflicts with its field's type.

    Raises:
        DestinationTypeConflictError: an existing column's type cannot hold its field's values.
    """
    dialect = engine.dialect.name
    schema = destination_schema(engine, plan.destination_namespace)
    desired = _desired_columns(plan, dialect, mapped)
    key = plan.destination_primary_key
    keys = {plan.customer_field, key} if key else set()
    with engine.begin() as connection:
        found_columns = table_columns(connection, plan.destination_table, schema)
        exists = found_columns is not None
        existing: dict[str, sa.types.TypeEngine] = found_columns or {}
        if dialect == "mysql":
            exact = keys | {plan.customer_field}
            desired = _with_key_collation(desired, exact, key_collation(connection))
        widened: dict[str, sa.types.TypeEngine] = {}
        if exists:
            for index, column in enumerate(desired):
                found = existing.get(column.name)
                data_type = _mapped_type(mapped, column.name)
                wider = (
                    None if found is None else field_types.widened_type(found, data_type, dialect)
                )
                if wider is not None:
                    widened[column.name] = wider
                elif (
                    found is not None
                    and column.field_type is not None
                    and not field_types.compatible(column.field_type, found)
                ):
                    raise DestinationTypeConflictError(
                        f"column {column.name!r} of destination table {plan.destination_label} "
                        f"has type {found}, which cannot hold {column.field_type.value} values"
                    )
                if found is not None and _keeps_found_type(found, column.type):
                    # the writer casts to the column as it is (or as it is widened)
                    effective = widened.get(column.name, found)
                    desired[index] = DestinationColumn(column.name, effective, column.field_type)
            if dialect == "mysql":
                _check_key_collations(connection, plan, schema, exact)
        if not exists:
            if schema is not None and not sa.inspect(connection).has_schema(schema):
                connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            table = destination_table(plan, dialect, schema, desired)
            table.create(connection)
            return table
        preparer = connection.dialect.identifier_preparer
        table = destination_table(plan, dialect, schema, desired)
        for name, wider in widened.items():
            _alter_type(connection, table, name, wider, plan.destination_label)
        for column in desired:
            if column.name not in existing:
                connection.execute(
                    sa.DDL(
                        f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                        f"{preparer.quote(column.name)} "
                        f"{column.type.compile(dialect=connection.dialect)}"
                    )
                )
        if (
            keys
            and dialect not in _UNINDEXED_DIALECTS
            and not _has_unique_key(sa.inspect(connection), plan.destination_table, schema, keys)
        ):
            sa.Index(
                f"uq_{plan.destination_table}_{plan.customer_field}_{key}"[:60],
                *[table.c[name] for name in (plan.customer_field, key)],
                unique=True,
            ).create(connection)
    return table


def _mapped_type(mapped: pa.Schema | None, name: str) -> pa.DataType | None:
    if mapped is None or name not in mapped.names:
        return None
    return mapped.field(name).type


def _keeps_found_type(found: sa.types.TypeEngine, desired: sa.types.TypeEngine) -> bool:
    """Whether the writer takes an existing column's own type: its sized decimals."""
    return isinstance(found, sa.Numeric) and isinstance(desired, sa.Numeric)


def _alter_type(
    connection: sa.Connection,
    table: sa.Table,
    name: str,
    wider: sa.types.TypeEngine,
    label: str,
) -> None:
    """Widen an existing column (integer -> decimal, more digits), never narrowing its values.

    Raises:
        DestinationTypeConflictError: the database refuses (an existing value does not fit).
    """
    preparer = connection.dialect.identifier_preparer
    column = preparer.quote(name)
    ddl = wider.compile(dialect=connection.dialect)
    if connection.dialect.name == "mysql":
        nullable = "" if table.c[name].nullable else " NOT NULL"
        change = f"MODIFY COLUMN {column} {ddl}{nullable}"
    else:
        change = f"ALTER COLUMN {column} TYPE {ddl}"
    try:
        connection.execute(sa.DDL(f"ALTER TABLE {preparer.format_table(table)} {change}"))
    except sa.exc.DBAPIError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise DestinationTypeConflictError(
            f"column {name!r} of destination table {label} cannot widen to {ddl} for the "
            f"values read: {reason}"
        ) from None
    table.c[name].type = wider


def existing_table(engine: sa.Engine, plan: SyncPlan) -> sa.Table | None:
    """The destination table as it is (``None`` when it does not exist)."""
    schema = destination_schema(engine, plan.destination_namespace)
    with engine.connect() as connection:
        columns = table_columns(connection, plan.destination_table, schema)
    if columns is None:
        return None
    return sa.Table(
        plan.destination_table,
        sa.MetaData(),
        *[sa.Column(name, kind) for name, kind in columns.items()],
        schema=schema,
    )


# --- writers -------------------------------------------------------------------------------


def _stage_type(column_type: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """A staging column's type: JSON is staged as the text it already is (no re-encoding)."""
    if isinstance(column_type, sa.JSON):
        return sa.Text()
    return column_type


class BatchWriter:
    """Writes batches into one destination table over one connection held for the run.

    The portable path: a temporary table filled with executemany, then one set-based statement.
    Dialects override the hooks (:meth:`_prepare`, :meth:`_stage_table`, :meth:`_load`,
    :meth:`_stage_batch`, :meth:`_release`, :meth:`_selected`, :meth:`_upsert_from`,
    :meth:`_merge`, :meth:`_execute`, :meth:`_fetch_one`) with their fast paths.

    Writes accumulate in one transaction until :meth:`commit`; ``min_commit_rows`` is the
    smallest commit worth making on the dialect (the run commits at least that many rows).
    """

    min_commit_rows = 0

    def __init__(self, engine: sa.Engine, table: sa.Table, plan: SyncPlan) -> None:
        self.engine = engine
        self.table = table
        self.customer_field = plan.customer_field
        self.customer_id = plan.customer_id
        key = plan.destination_primary_key
        self.keys: list[str] = [plan.customer_field, key] if key else []
        self.label = plan.destination_label
        self.connection = engine.connect()
        self._batch_stage: sa.Table | None = None
        self._batch_schema: pa.Schema | None = None
        self._swap_stage: sa.Table | None = None
        self._swap_rows = 0
        self._transaction: sa.RootTransaction | None = None

    # -- hooks --

    def _fitted(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Numbers cast exactly to the table's sized decimals (a value that does not fit fails
        the run, naming the column: never rounded)."""
        return field_types.fit_numbers(batch, self.table, self.table.fullname)

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Adapt a batch to what the driver accepts (here: timestamps as UTC wall clock)."""
        batch = self._fitted(batch)
        arrays = []
        for column in batch.columns:
            if pa.types.is_timestamp(column.type) and column.type.tz is not None:
                column = column.cast(pa.timestamp("us", "UTC")).cast(pa.timestamp("us"))
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    def _stage_table(self, schema: pa.Schema, *, per_batch: bool) -> sa.Table:
        """A new temporary table for batches of ``schema``, with the target's column types."""
        name = f"sp_stage_{next(_names)}"
        table = sa.Table(
            name,
            sa.MetaData(),
            *[sa.Column(c, _stage_type(self.table.c[c].type)) for c in schema.names],
            prefixes=["TEMPORARY"],
        )
        self._create(table)
        return table

    def _create(self, table: sa.Table) -> None:
        """Create a (staging) table, inside the open transaction if there is one."""
        if self.connection.in_transaction():
            table.create(self.connection)
        else:
            with self.connection.begin():
                table.create(self.connection)

    def _load(self, stage: sa.Table, batch: pa.RecordBatch) -> None:
        """Put a batch's rows into a staging table (inside the caller's transaction)."""
        rows = batch.to_pylist()
        if rows:
            self.connection.execute(stage.insert(), rows)

    def _before_batch(self, batch: pa.RecordBatch) -> None:
        """Create the per-batch staging table once (again when the batches' schema changes)."""
        if self._batch_stage is None or self._batch_schema != batch.schema:
            self._batch_stage = self._stage_table(batch.schema, per_batch=True)
            self._batch_schema = batch.schema

    def _stage_batch(self, batch: pa.RecordBatch) -> sa.FromClause:
        """A relation holding one batch, for the set-based statement that follows."""
        assert self._batch_stage is not None
        self._load(self._batch_stage, batch)
        return self._batch_stage

    def _release(self, stage: sa.FromClause) -> None:
        """Empty the per-batch staging relation (inside the transaction)."""
        if isinstance(stage, sa.Table):
            self.connection.execute(stage.delete())

    def _selected(self, stage: sa.FromClause, columns: Sequence[str]) -> list[sa.ColumnElement]:
        """The staged columns as the target takes them (here: as they are)."""
        return [stage.c[c] for c in columns]

    def _upsert_from(self, stage: sa.FromClause, columns: Sequence[str]) -> tuple[int, int]:
        """Upsert the staged rows: ``(updated, unchanged)``, the present keys whose values
        changed and those whose values are the same (not written)."""
        if not self._may_conflict(stage):
            self._insert_from(stage, columns)
            return 0, 0
        matched = self._matched(stage)
        if not matched:
            self._insert_from(stage, columns)
            return 0, 0
        updated = self._merge(stage, columns, matched)
        return updated, matched - updated

    def _merge(self, stage: sa.FromClause, columns: Sequence[str], matched: int) -> int:
        """Upsert the staged rows, ``matched`` of whose keys are present; the rows updated.

        Here: delete the present rows whose values differ, then insert the staged rows whose
        keys are no longer present; unchanged rows are not written.
        """
        changed = self._values_differ(stage, columns)
        updated = 0
        if changed is not None:
            updated = self._execute(
                self.table.delete().where(
                    self._customer_rows(),
                    sa.exists(
                        sa.select(sa.literal(1))
                        .select_from(stage)
                        .where(self._key_match(stage), changed)
                    ),
                )
            )
        self._insert_from(stage, columns, only_new=True)
        return updated

    def _execute(self, statement: sa.Executable) -> int:
        """Run a statement that may read the per-batch staging relation; the rows it changed."""
        return self.connection.execute(statement).rowcount

    def _fetch_one(self, query: sa.Select) -> Sequence[Any] | None:
        """The first row of a query that may read the per-batch staging relation."""
        return self.connection.execute(query).first()

    # -- set-based statements --

    def _comparable(self, value: sa.ColumnElement, column: str) -> sa.ColumnElement:
        """A value of ``column`` as compared to tell a changed row (here: as it is)."""
        return value

    def _value_pairs(
        self, stage: sa.FromClause, columns: Sequence[str]
    ) -> list[tuple[sa.ColumnElement, sa.ColumnElement]]:
        """``(destination, staged)`` values of the non-key columns, ready to compare."""
        staged = self._selected(stage, columns)
        return [
            (self._comparable(self.table.c[c], c), self._comparable(value, c))
            for c, value in zip(columns, staged, strict=True)
            if c not in self.keys
        ]

    def _values_differ(
        self, stage: sa.FromClause, columns: Sequence[str]
    ) -> sa.ColumnElement[bool] | None:
        """Null-safe: some non-key value of the row differs (``None``: there are none)."""
        pairs = self._value_pairs(stage, columns)
        if not pairs:
            return None
        return sa.or_(*[target.is_distinct_from(value) for target, value in pairs])

    def _unchanged(self, stage: sa.FromClause, columns: Sequence[str]) -> int:
        """Staged rows whose key is present with the same values (null-safe)."""
        pairs = self._value_pairs(stage, columns)
        same = [target.is_not_distinct_from(value) for target, value in pairs]
        query = (
            sa.select(sa.func.count())
            .select_from(stage)
            .where(
                sa.exists(
                    sa.select(sa.literal(1))
                    .select_from(self.table)
                    .where(self._customer_rows(), self._key_match(stage), *same)
                )
            )
        )
        row = self._fetch_one(query)
        assert row is not None
        return int(row[0])

    def _refuse_repeated_keys(self, batch: pa.RecordBatch) -> None:
        """Refuse a batch holding a key twice (a custom_join that fans out), before writing.

        Every row of a batch carries the run's end customer, so the key column decides.
        A key may repeat across batches (a row re-read after it changed), not within one.

        Raises:
            SourceSchemaError: naming the table, the key column and a repeated value.
        """
        keys = batch.column(self.keys[-1])
        if isinstance(keys.type, pa.BaseExtensionType):
            keys = keys.storage
        if pa.types.is_dictionary(keys.type):
            keys = keys.dictionary_decode()
        if pc.count_distinct(keys, mode="all").as_py() == len(keys):
            return
        counts = pc.value_counts(keys)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        self._refuse_repeated(
            repeated.field("values")[0].as_py(), repeated.field("counts")[0].as_py()
        )

    def _refuse_repeated(self, value: Any, count: int) -> None:
        raise SourceSchemaError(
            f"primary key {self.keys[-1]!r} is not unique: {value!r} appears {count} times in "
            f"the rows read for destination table {self.label} (end customer "
            f"{self.customer_id!r}, key columns ({self.customer_field}, {self.keys[-1]})); "
            "a custom_join that matches a row several times, or a source without a unique key, "
            "repeats it. Nothing of these rows was written"
        )

    def _key_match(self, stage: sa.FromClause) -> sa.ColumnElement[bool]:
        staged = self._selected(stage, self.keys)
        return sa.and_(*[self.table.c[k] == v for k, v in zip(self.keys, staged, strict=True)])

    def _matched(self, stage: sa.FromClause) -> int:
        """Destination rows whose keys are staged: a semi-join that hashes the (small) stage.

        Every staged row carries this run's end customer, so the customer is a constant here.
        """
        key = self.keys[-1]
        query = (
            sa.select(sa.func.count())
            .select_from(self.table)
            .where(
                self._customer_rows(),
                self.table.c[key].in_(sa.select(*self._selected(stage, [key])).scalar_subquery()),
            )
        )
        row = self._fetch_one(query)
        assert row is not None
        return int(row[0])

    def _may_conflict(self, stage: sa.FromClause) -> bool:
        """Whether any staged key may be present already: ``False`` when this customer has no
        key in the staged keys' range (one index probe), so that a plain insert will do.

        Only for keys that order the same in every collation (numbers, dates, timestamps).
        """
        key = self.keys[-1]
        if not isinstance(self.table.c[key].type, _RANGED_KEY_TYPES):
            return True
        (staged,) = self._selected(stage, [key])
        bounds = self._fetch_one(sa.select(sa.func.min(staged), sa.func.max(staged)))
        if bounds is None or bounds[0] is None:
            return False
        probe = (
            sa.select(sa.literal(1))
            .select_from(self.table)
            .where(self._customer_rows(), self.table.c[key].between(bounds[0], bounds[1]))
            .limit(1)
        )
        return self._fetch_one(probe) is not None

    def _insert_from(
        self, stage: sa.FromClause, columns: Sequence[str], *, only_new: bool = False
    ) -> None:
        select = sa.select(*self._selected(stage, columns))
        if only_new:
            select = select.where(
                ~sa.exists(
                    sa.select(sa.literal(1)).select_from(self.table).where(self._key_match(stage))
                )
            )
        self._execute(self.table.insert().from_select(list(columns), select))

    def _customer_rows(self) -> sa.ColumnElement[bool]:
        return self.table.c[self.customer_field] == self.customer_id

    # -- the write modes --

    def _begin(self) -> None:
        if self._transaction is None:
            self._transaction = self.connection.begin()

    def upsert(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert new keys and update existing ones (visible at :meth:`commit`)."""
        if not self.keys:
            return self.append(batch)
        self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        columns = batch.schema.names
        self._before_batch(batch)
        self._begin()
        stage = self._stage_batch(batch)
        updated, unchanged = self._upsert_from(stage, columns)
        self._release(stage)
        return WriteCounts(
            inserted=batch.num_rows - updated - unchanged, updated=updated, unchanged=unchanged
        )

    def append(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert the rows whose keys are not present yet (all rows without a key); the
        present ones are counted as unchanged."""
        if self.keys:
            self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        columns = batch.schema.names
        self._before_batch(batch)
        self._begin()
        stage = self._stage_batch(batch)
        matched = self._matched(stage) if self.keys else 0
        self._insert_from(stage, columns, only_new=bool(matched))
        self._release(stage)
        return WriteCounts(inserted=batch.num_rows - matched, unchanged=matched)

    # -- the bulk load: a destination holding no rows for this end customer --

    def holds_no_rows(self) -> bool:
        """Whether the table holds no row of this end customer (one index probe)."""
        probe = sa.select(sa.literal(1)).select_from(self.table).where(self._customer_rows())
        with self.connection.begin():
            return self.connection.execute(probe.limit(1)).first() is None

    def bulk_load_batch(self, batch: pa.RecordBatch) -> WriteCounts:
        """Insert a batch into a table that held no rows of this end customer when the run
        began (see :meth:`holds_no_rows`): every row is new unless the run repeats a key.

        Here the upsert (which absorbs a repeated key); dialects with a bulk path override it,
        and must refuse a key the run repeats rather than write it twice.
        """
        return self.upsert(batch)

    def commit(self) -> None:
        """Commit what was written since the last commit."""
        if self._transaction is not None:
            transaction, self._transaction = self._transaction, None
            transaction.commit()

    def stage(self, batch: pa.RecordBatch) -> None:
        """Add a batch to the run's swap staging table (the destination is not touched)."""
        if self.keys:
            self._refuse_repeated_keys(batch)
        batch = self._prepare(batch)
        if self._swap_stage is None:
            self._swap_stage = self._stage_table(batch.schema, per_batch=False)
        with self.connection.begin():
            self._load(self._swap_stage, batch)
        self._swap_rows += batch.num_rows

    def swap(self) -> WriteCounts:
        """Replace the end customer's rows with the staged ones, in one transaction.

        Staged rows repeating a key (in different batches) are refused, nothing is changed.
        """
        stage = self._swap_stage
        with self.connection.begin():
            if stage is not None and self.keys:
                key = stage.c[self.keys[-1]]
                repeated = self._fetch_one(
                    sa.select(key, sa.func.count())
                    .group_by(key)
                    .having(sa.func.count() > 1)
                    .limit(1)
                )
                if repeated is not None:
                    self._refuse_repeated(repeated[0], int(repeated[1]))
            before = int(
                self.connection.execute(
                    sa.select(sa.func.count()).select_from(self.table).where(self._customer_rows())
                ).scalar_one()
            )
            matched = self._matched(stage) if stage is not None and self.keys else 0
            unchanged = self._unchanged(stage, list(stage.c.keys())) if matched else 0
            self.connection.execute(self.table.delete().where(self._customer_rows()))
            if stage is not None:
                self._insert_from(stage, list(stage.c.keys()))
        if stage is not None:
            with self.connection.begin():
                stage.drop(self.connection)
            self._swap_stage = None
        inserted = self._swap_rows - matched
        return WriteCounts(
            inserted=inserted,
            updated=matched - unchanged,
            deleted=before - matched,
            unchanged=unchanged,
        )

    def close(self) -> None:
        """Roll back anything uncommitted and release the connection (temporary tables go)."""
        try:
            if self._transaction is not None:
                self._transaction.rollback()
                self._transaction = None
        finally:
            self.connection.close()
