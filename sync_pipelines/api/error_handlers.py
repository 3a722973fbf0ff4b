"""The sync API's errors as JSON ``{"error": ..., "details": [...]}``, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from sync_pipelines.contract.errors import SyncApiError, validation_details

logger = logging.getLogger("sync_pipelines.api")


def error_response(status_code: int, message: str, details: list | None = None) -> JSONResponse:
    """An error in the shape every route declares (``ErrorBody``)."""
    return JSONResponse(
        status_code=status_code, content={"error": message, "details": details or []}
    )


def _allowed_methods(scope: Scope, routes: Sequence[BaseRoute]) -> list[str]:
    methods: set[str] = set()
    for route in routes:
        if route.matches(scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install_error_handlers(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Answer every error of ``app`` as JSON; a 405's ``Allow`` names the methods ``routes``
    serve on the path."""

    @app.exception_handler(SyncApiError)
    async def _api_error(_request: Request, error: SyncApiError) -> JSONResponse:
        return error_response(error.status_code, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return error_response(400, "the body is not valid JSON")
        details = validation_details(error.errors())
        return error_response(422, "validation failed", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        response = error_response(error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        if error.status_code == 405:  # every method of the path, not only the first route's
            response.headers["Allow"] = ", ".join(_allowed_methods(request.scope, routes))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the server log has the details")
