"""The sync API in-process: the client's methods over :class:`SyncService` directly.

The methods are not written out: each method of the
:class:`~sync_pipelines.contract.protocol.SyncApi` protocol is bound to the client's organization
(``client.get_sync(7)`` is ``service.get_sync(organization_id, 7)``), with the protocol's
signature and annotations, so the protocol and the service are the only places they are spelled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sync_pipelines.api.service import DEFAULT_ORGANIZATION, SyncService
from sync_pipelines.contract.protocol import SYNC_API_METHODS, SyncApi


class EmbeddedSyncApiClient:
    """Implements :class:`~sync_pipelines.contract.protocol.SyncApi` for one organization,
    in-process.

    Arguments, returns and errors are those of the HTTP client, so callers cannot tell them apart.
    """

    def __init__(self, service: SyncService, organization_id: int) -> None:
        self.service = service
        self.organization_id = organization_id

    @classmethod
    def open(
        cls, database_url: str | None = None, *, organization: str = DEFAULT_ORGANIZATION
    ) -> EmbeddedSyncApiClient:
        """A client on the store at ``database_url`` (default: SQLite in the local home)."""
        service = SyncService.open(database_url)
        return cls(service, service.ensure_organization(organization))

    def close(self) -> None:
        """Release the store's connections."""
        self.service.engine.dispose()

    def __enter__(self) -> EmbeddedSyncApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    if TYPE_CHECKING:
        # The protocol's methods are set on the class at import (below); declared here so
        # that a type checker accepts them (typed through SyncApi where callers need it).
        def __getattr__(self, name: str) -> Any: ...


def _bound_to_organization(name: str) -> Callable[..., Any]:
    """``SyncApi.<name>`` for the client's organization: ``service.<name>(org, ...)``."""
    declared = getattr(SyncApi, name)

    @functools.wraps(declared)
    def method(self: EmbeddedSyncApiClient, /, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.service, name)(self.organization_id, *args, **kwargs)

    method.__qualname__ = f"EmbeddedSyncApiClient.{name}"
    method.__doc__ = f":meth:`SyncService.{name}` for this client's organization."
    return method


for _name in sorted(SYNC_API_METHODS):
    setattr(EmbeddedSyncApiClient, _name, _bound_to_organization(_name))
del _name
