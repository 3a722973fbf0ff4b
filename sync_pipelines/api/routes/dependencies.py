"""What routes take besides their body: the service, the caller's organization, bounded ids.

Every route needs an ``X-API-KEY``; a key sees only its organization's resources.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyHeader

from sync_pipelines.api.service import SyncService
from sync_pipelines.contract.models import MAX_ID, NO_NUL

_api_key_header = APIKeyHeader(name="X-API-KEY", auto_error=False)


def _service(request: Request) -> SyncService:
    return request.app.state.service


def _organization(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> int:
    return _service(request).authenticate(api_key)


Service = Annotated[SyncService, Depends(_service)]
Org = Annotated[int, Depends(_organization)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An id in a path: a positive 32-bit integer (else 422 naming the parameter)."""
QueryText = Annotated[str | None, Query(max_length=255, pattern=NO_NUL)]
