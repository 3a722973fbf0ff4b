"""The shapes routes answer in: JSON envelopes, and the error responses each route declares.

Every route declares its response envelope and the errors it can send, so ``/openapi.json``
is what the server does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model

from sync_pipelines.api.middleware import MAX_BODY_BYTES
from sync_pipelines.contract.errors import ErrorBody


def envelope_model(name: str, doc: str, **fields: Any) -> type[BaseModel]:
    """A response model ``name`` with the required ``fields`` (name: type)."""
    model = create_model(name, **{key: (kind, ...) for key, kind in fields.items()})
    model.__doc__ = doc
    return model


DeletedResponse = envelope_model("DeletedResponse", "The resource was deleted.", deleted=bool)

_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON, or the connection cannot be browsed",
    401: "Missing or invalid X-API-KEY",
    404: "No such resource in the caller's organization",
    409: "A conflict: a duplicate sync, a run lease held, a resource still in use",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    422: "Validation failed: each detail names a field",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route (401 always), in the shape the server sends."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]}
        for code in sorted({401, *codes})
    }


# Error sets: a route with parameters (422), with a path id (404), with a body (400, 413).
QUERY = error_responses(422)
BY_ID = error_responses(404, 422)
BODY = error_responses(400, 413, 422)
BODY_BY_ID = error_responses(400, 404, 413, 422)
IN_USE = error_responses(404, 409, 422)
RUNNER = error_responses(400, 404, 409, 413, 422)
BROWSE = error_responses(400, 404, 422)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value


def envelope(**items: Any) -> dict[str, Any]:
    """``{key: value}`` with models and lists of models dumped as JSON."""
    return {key: _dump(value) for key, value in items.items()}
