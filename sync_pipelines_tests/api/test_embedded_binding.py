"""The embedded client's methods are the SyncApi protocol's, bound to one organization."""

from __future__ import annotations

import inspect

from sync_pipelines.api.client import SyncApiClient
from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.api.service import SyncService
from sync_pipelines.contract.protocol import SYNC_API_METHODS, SyncApi


def test_every_protocol_method_is_on_both_clients_with_its_signature():
    assert "get_sync" in SYNC_API_METHODS and "start_run" in SYNC_API_METHODS
    for name in SYNC_API_METHODS:
        declared = inspect.signature(getattr(SyncApi, name))
        assert inspect.signature(getattr(EmbeddedSyncApiClient, name)) == declared, name
        assert hasattr(SyncApiClient, name), name


def test_the_service_takes_the_organization_then_the_protocol_arguments():
    for name in SYNC_API_METHODS:
        service = inspect.signature(getattr(SyncService, name)).parameters
        declared = inspect.signature(getattr(SyncApi, name)).parameters.values()
        assert list(service)[:2] == ["self", "org"] or list(service)[1].startswith("org"), name
        named = [p.name for p in declared if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        assert set(named[1:]) <= set(service), name


def test_a_bound_method_passes_the_organization(tmp_path):
    calls = []

    class Service:
        def get_sync(self, org, sync_id):
            calls.append((org, sync_id))
            return "sync"

    client = EmbeddedSyncApiClient(Service(), 42)  # type: ignore[arg-type]
    assert client.get_sync(7) == "sync"
    assert calls == [(42, 7)]
    assert not hasattr(client, "create_api_key")  # only the protocol's names are bound
