"""The sync API's errors: one hierarchy for the service, the HTTP app and both clients.

Each carries the HTTP status it maps to, a message, and ``details`` (``[{"field": ...,
"message": ...}]`` for validation). The HTTP client raises the same classes from the server's
JSON, so callers handle embedded and remote errors alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import pydantic

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class SyncApiError(Exception):
    """Base class: ``status_code``, ``message`` and ``details``."""

    status_code = 500

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_json(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": ..., "details": [...]}``."""
        return {"error": self.message, "details": self.details}

    def __str__(self) -> str:
        if not self.details:
            return self.message
        parts = [f"{d.get('field') or '(body)'}: {d.get('message')}" for d in self.details]
        return f"{self.message}: " + "; ".join(parts)


class BadRequestError(SyncApiError):
    """Malformed request (400)."""

    status_code = 400


class AuthenticationError(SyncApiError):
    """Missing or unknown API key (401)."""

    status_code = 401


class NotFoundError(SyncApiError):
    """No such resource in the caller's organization (404)."""

    status_code = 404


class ConflictError(SyncApiError):
    """Duplicate sync, run lease held, or lease lost (409)."""

    status_code = 409


class ValidationFailedError(SyncApiError):
    """The body is well-formed but breaks a rule (422); ``details`` names each field."""

    status_code = 422

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationFailedError:
        """One failing field."""
        return cls("validation failed", [{"field": field, "message": message}])


class RateLimitedError(SyncApiError):
    """Too many requests (429)."""

    status_code = 429


class ServerError(SyncApiError):
    """The server failed (5xx) or could not be reached."""

    status_code = 500


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationFailedError,
    429: RateLimitedError,
}


def error_for_status(status_code: int) -> type[SyncApiError]:
    """The error class of an HTTP status."""
    return _BY_STATUS.get(status_code, ServerError if status_code >= 500 else BadRequestError)


# Parts of an error location that are not field names: where FastAPI found the value, and the
# tags of the ``POST /sync`` body union.
_LOCATION_PREFIXES = frozenset({"body", "query", "path", "database_sync", "provider_sync"})


def validation_details(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's (or FastAPI's) errors as ``[{"field": "a.b[0].c", "message": ...}]``.

    A rule across fields names the field it blames (``ctx["field"]``); an error about the body
    as a whole (not an object, say) names ``"body"``.
    """
    details = []
    for item in errors:
        field = ""
        blamed = (
            (item.get("ctx") or {}).get("field") if item.get("type") == "invalid_field" else None
        )
        for part in [*item["loc"], *([blamed] if blamed else [])]:
            if part in _LOCATION_PREFIXES:
                continue
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        message = item["msg"].removeprefix("Value error, ")
        details.append({"field": field or "body", "message": message})
    return details


class ErrorDetail(pydantic.BaseModel):
    """What is wrong with one field (``"body"``: the request body as a whole)."""

    field: str
    message: str


class ErrorBody(pydantic.BaseModel):
    """Every error response: a message and, for validation, one detail per field."""

    error: str
    details: list[ErrorDetail]


def validated(model: type[ModelT], data: Any) -> ModelT:
    """``model.model_validate(data)``, failing with a :class:`ValidationFailedError`."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        details = validation_details(error.errors(include_url=False, include_input=False))
        raise ValidationFailedError("validation failed", details) from None
