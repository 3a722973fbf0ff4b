"""A sync's config checked against its source before anything is written (``create_sync_op``).

The sync API's connection browsing (``GET /connection/tables|schema``) tells whether the table
exists, which columns it has and of which type; a mapping from a missing column, a cursor that
cannot order rows or a mapping onto a field the object lacks is refused with the field named, so
a bad Launchpad config never changes a working sync nor leaves a broken new one behind.
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.contract.errors import SyncApiError
from sync_pipelines.contract.models import FieldType, Source, Sync, SyncCreate, SyncObject
from sync_pipelines.contract.protocol import SyncApi

UNORDERED_TYPES = frozenset({FieldType.BOOLEAN.value, FieldType.JSON.value, FieldType.ARRAY.value})
"""Column types a cursor cannot order rows by."""

Problem = dict[str, Any]
"""``{"field": ..., "message": ...}``, as the sync API's validation details."""


def _mapped_source(mappings: list[Any], object_field: str | None) -> str | None:
    """The source column mapped onto an object field (the field itself without mappings)."""
    if object_field is None:
        return None
    for mapping in mappings:
        if mapping.destination_field_name == object_field:
            return mapping.source_field_name
    return object_field


def check_against_source(
    client: SyncApi,
    body: SyncCreate,
    *,
    source: Source,
    obj: SyncObject,
    existing: Sync | None,
    given: set[str],
) -> list[Problem]:
    """What is wrong with a sync's config, against its source table and its object.

    Args:
        client: the sync API (its connection browsing reads the source).
        body: the wanted sync.
        source: its source.
        obj: its object.
        existing: the sync it updates, if any (fields the config leaves out keep its values).
        given: the fields the config sets.

    Returns:
        The problems (empty: the config fits), each naming its config field.
    """

    def wanted(name: str) -> Any:
        if existing is not None and name not in given:
            return getattr(existing, name)
        return getattr(body, name)

    if wanted("custom_join"):
        return []  # a query: its columns are known when the run probes it
    namespace, table = wanted("namespace"), wanted("table_name")
    if not table:
        return []  # the sync API names the missing table_name
    connection_id = source.connection.id
    where = f"source {source.id} ({source.display_name!r})"
    try:
        tables = client.list_tables(connection_id, namespace or "")
    except SyncApiError as error:
        return [{"field": "namespace", "message": f"cannot browse {where}: {error}"}]
    if table not in tables:
        shown = ", ".join(tables[:20]) or "none"
        return [
            {
                "field": "table_name",
                "message": f"table {namespace}.{table} not found in {where} (tables: {shown})",
            }
        ]
    try:
        columns = {c["name"]: c for c in client.get_schema(connection_id, namespace, table)}
    except SyncApiError as error:
        return [{"field": "table_name", "message": f"cannot read {namespace}.{table}: {error}"}]
    label = f"{namespace}.{table} of {where}"
    known = ", ".join(columns)
    problems: list[Problem] = []
    mappings = list(wanted("field_mappings") or [])
    fields = {f.name for f in obj.object_fields if not f.omit}
    for index, mapping in enumerate(mappings):
        if mapping.source_field_name not in columns:
            problems.append(
                {
                    "field": f"field_mappings[{index}].source_field_name",
                    "message": f"column {mapping.source_field_name!r} not found in {label} "
                    f"(columns: {known})",
                }
            )
        if fields and mapping.destination_field_name not in fields:
            problems.append(
                {
                    "field": f"field_mappings[{index}].destination_field_name",
                    "message": f"object {obj.id} ({obj.display_name!r}) has no field "
                    f"{mapping.destination_field_name!r} (fields: {', '.join(sorted(fields))})",
                }
            )
    cursor = wanted("cursor_field") or _mapped_source(mappings, obj.cursor_field)
    primary_key = wanted("primary_key") or _mapped_source(mappings, obj.primary_key)
    for name, column in (("cursor_field", cursor), ("primary_key", primary_key)):
        if column is not None and column not in columns:
            problems.append(
                {
                    "field": name,
                    "message": f"{name} column {column!r} not found in {label} (columns: {known})",
                }
            )
    if cursor in columns and columns[cursor]["type"] in UNORDERED_TYPES:
        problems.append(
            {
                "field": "cursor_field",
                "message": f"cursor column {cursor!r} of {label} holds {columns[cursor]['type']} "
                "values, which cannot order rows; use a timestamp, date or number column",
            }
        )
    return problems
