"""Map source batches onto the object: field mappings, the end customer column, field types."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sync_pipelines.contract.models import DeleteMode
from sync_pipelines.engine import field_types
from sync_pipelines.engine.errors import CursorTypeError, MappingError
from sync_pipelines.engine.plan import DELETED_AT, SyncPlan
from sync_pipelines.engine.sql.relation import SourceRelation

__all__ = ["check_cursor_type", "map_batch", "source_columns"]


def source_columns(plan: SyncPlan, relation: SourceRelation) -> list[str]:
    """The source columns a run reads: the mapped ones plus cursor and primary key."""
    if plan.fields is None:
        wanted = list(relation.columns)
    else:
        wanted = [field.source for field in plan.fields]
    for key in (plan.cursor, plan.primary_key):
        if key is not None and key not in wanted:
            wanted.append(key)
    return list(dict.fromkeys(wanted))


def check_cursor_type(batch: pa.RecordBatch, plan: SyncPlan) -> None:
    """The cursor's values as read must order rows (custom_join columns are not reflected).

    Raises:
        CursorTypeError: the cursor column holds booleans, JSON objects, lists or bytes.
    """
    if plan.cursor is None or plan.cursor not in batch.schema.names:
        return
    data_type = batch.schema.field(plan.cursor).type
    if not field_types.orderable_arrow_type(data_type):
        raise CursorTypeError(
            f"cursor column {plan.cursor!r} of the {plan.source_label} holds {data_type} "
            "values, which cannot order rows; use a timestamp, date or number column"
        )


def map_batch(batch: pa.RecordBatch, plan: SyncPlan) -> pa.RecordBatch:
    """A source batch as destination rows: the end customer column first, then mapped fields.

    Raises:
        MappingError: a value does not fit its field's type (names the column and table).
    """
    if plan.fields is None:
        pairs = [(name, name, None) for name in batch.schema.names if name != plan.customer_field]
    else:
        pairs = [(field.source, field.destination, field.type) for field in plan.fields]
    arrays: list[pa.Array] = [pc.fill_null(pa.nulls(batch.num_rows, pa.string()), plan.customer_id)]
    names = [plan.customer_field]
    for source, destination, field_type in pairs:
        try:
            arrays.append(field_types.cast_column(batch.column(source), field_type))
        except (pa.ArrowException, ValueError, TypeError, ArithmeticError) as error:
            kind = field_type.value if field_type is not None else "its type"
            raise MappingError(
                f"column {source!r} of the {plan.source_label} cannot be written as "
                f"{kind} to {plan.destination_label}.{destination}: {error}"
            ) from None
        names.append(destination)
    if plan.deletes is DeleteMode.SOFT:  # the row is in the source: not deleted (any more)
        arrays.append(pa.nulls(batch.num_rows, field_types.UTC_TIMESTAMP))
        names.append(DELETED_AT)
    return pa.RecordBatch.from_arrays(arrays, names=names)
