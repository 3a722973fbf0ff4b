"""The destination table: its schema, columns and key collations, created or widened to what a
sync writes (:func:`ensure_table`), read back as the destination spells it.

On MySQL/MariaDB the end-customer and key columns get a binary NO PAD collation
(:func:`key_collation`), so values that differ only in case, trailing spaces or accents never
merge; an existing table whose key columns would merge distinct values is refused. A column
whose source widened (e.g. integer to numeric) is widened, never truncated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa

from sync_pipelines.contract.models import FieldType
from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import DestinationTypeConflictError
from sync_pipelines.engine.plan import SyncPlan

__all__ = [
    "DestinationColumn",
    "column_type_names",
    "destination_schema",
    "destination_table",
    "ensure_table",
    "existing_table",
    "key_collation",
    "table_columns",
]


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
