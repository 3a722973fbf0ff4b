"""The routes that browse a connection: its namespaces, their tables, a table's columns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sync_pipelines.api.routes.dependencies import Org, Service
from sync_pipelines.api.routes.envelopes import BROWSE, envelope_model
from sync_pipelines.contract.models import MAX_ID, FieldType


class TableColumn(BaseModel):
    """A column of a browsed table, typed as an object field."""

    name: str
    type: FieldType
    optional: bool


NamespacesResponse = envelope_model(
    "NamespacesResponse", "A database's namespaces.", namespaces=list[str]
)
TablesResponse = envelope_model("TablesResponse", "A namespace's tables.", tables=list[str])


class SchemaResponse(BaseModel):
    """A table's columns."""

    columns: list[TableColumn] = Field(alias="schema")


ConnectionId = Annotated[
    int,
    Query(ge=1, le=MAX_ID, description="a source's or destination's connection"),
]
BrowsedName = Annotated[str, Query(min_length=1, max_length=255)]

router = APIRouter()


@router.get(
    "/connection/namespaces",
    tags=["Connection"],
    response_model=NamespacesResponse,
    responses=BROWSE,
)
def namespaces(connection_id: ConnectionId, service: Service, org: Org) -> dict:
    return {"namespaces": service.list_namespaces(org, connection_id)}


@router.get(
    "/connection/tables",
    tags=["Connection"],
    response_model=TablesResponse,
    responses=BROWSE,
)
def tables(connection_id: ConnectionId, namespace: BrowsedName, service: Service, org: Org) -> dict:
    return {"tables": service.list_tables(org, connection_id, namespace)}


@router.get(
    "/connection/schema",
    tags=["Connection"],
    response_model=SchemaResponse,
    responses=BROWSE,
)
def schema(
    connection_id: ConnectionId,
    namespace: BrowsedName,
    table_name: BrowsedName,
    service: Service,
    org: Org,
) -> dict:
    return {"schema": service.get_schema(org, connection_id, namespace, table_name)}
