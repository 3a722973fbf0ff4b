"""The sync API over HTTP (FastAPI), with Fabra-compatible paths and envelopes: the app.

Every route needs an ``X-API-KEY``; a key sees only its organization's resources. Errors are
JSON ``{"error": ..., "details": [...]}``, never a stack trace. Every route declares its
response envelope and the errors it can send, so ``/openapi.json`` is what the server does.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from sync_pipelines.api.error_handlers import install_error_handlers
from sync_pipelines.api.middleware import BodyLimit, FabraV010Query
from sync_pipelines.api.routes import (
    connection_routes,
    credential_routes,
    destination_routes,
    object_routes,
    run_lease_routes,
    run_routes,
    source_routes,
    sync_routes,
)
from sync_pipelines.api.service import SyncService
from sync_pipelines.common import settings

_ROUTERS = (
    source_routes.router,
    destination_routes.router,
    object_routes.router,
    sync_routes.router,
    run_routes.router,
    credential_routes.router,
    run_lease_routes.router,
    connection_routes.router,
)
"""In the order of the OpenAPI document's paths."""


def create_app(
    service: SyncService | None = None,
    *,
    database_url: str | None = None,
    file_roots: Sequence[str] | None = None,
) -> FastAPI:
    """The sync API's FastAPI app over ``service`` (default: a store at ``database_url``).

    A server confines organizations' file databases (SQLite, DuckDB) to ``file_roots``
    (default: ``$SYNC_PIPELINES_FILE_ROOTS``; none: refused); ``service`` is set up so.
    """
    service = service or SyncService.open(database_url)
    service.file_roots = list(settings.file_roots() if file_roots is None else file_roots)
    app = FastAPI(
        title="sync-pipelines API",
        version="0.1.0",
        description="Sources, destinations, objects, syncs and runs (Fabra-compatible).",
        generate_unique_id_function=lambda route: route.name,  # operationId = the function
    )
    app.state.service = service
    for router in _ROUTERS:
        app.include_router(router)
    install_error_handlers(app, [route for router in _ROUTERS for route in router.routes])
    app.add_middleware(FabraV010Query)
    app.add_middleware(BodyLimit)
    return app
