"""Run any sync with the runner its kind needs: the SQL engine, or the API-provider runner.

The engine runs SQL syncs (:func:`sync_pipelines.engine.run_sync`) and the providers run
API-provider syncs (:func:`sync_pipelines.providers.sync_provider`), both on the engine's run
skeleton (:mod:`sync_pipelines.engine.runner`). Their
callers (``sync-pipelines run``, the Dagster resource and ops) pick through :func:`run_any_sync`,
so the pick and the options it passes on are written once. The runners are imported when a sync
runs, so that importing this module loads neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sync_pipelines.common.settings import DEFAULT_BATCH_SIZE
from sync_pipelines.contract.models import Sync
from sync_pipelines.contract.protocol import SyncApi

if TYPE_CHECKING:
    from sync_pipelines.engine.results import BatchProgress, SyncResult

__all__ = ["run_any_sync"]


def run_any_sync(
    sync: Sync,
    client: SyncApi,
    *,
    full_refresh: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run_id: int | None = None,
    runner_id: str | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    count_rows: bool = False,
    allow_mass_delete: bool = False,
    workers: int | None = None,
) -> SyncResult:
    """Start a run of ``sync`` and run it to the end with the runner its kind needs.

    Args:
        sync: the sync to run (``sync.provider`` set: an API-provider sync).
        client: the sync API (embedded or HTTP).
        full_refresh: re-read everything and replace the end customer's rows.
        batch_size: rows per batch.
        run_id: start this requested run (``POST /sync/{id}/run``) instead of a new one.
        runner_id: recorded on the run, to tell runners apart.
        on_progress: called after each committed batch.
        count_rows: also count the rows after the run: the source's and the destination's for
            a SQL sync, each collection table's for a provider sync.
        allow_mass_delete: SQL syncs only: let the delete check delete more than the sync's
            ``max_delete_fraction``.
        workers: SQL syncs only: threads loading a backfill's key ranges.

    Returns:
        The run's result (a :class:`~sync_pipelines.providers.ProviderSyncResult` for a provider
        sync).

    Raises:
        ValueError: an option that does not apply to the sync's kind, or a bad batch size.
        SyncRunError: the run failed (and is marked failed with the same message).
        sync_pipelines.contract.errors.SyncApiError: no run could be started (409: running).
    """
    if sync.provider:
        sql_only = [
            option
            for option, given in (
                ("workers", workers is not None),
                ("allow_mass_delete", allow_mass_delete),
            )
            if given
        ]
        if sql_only:
            raise ValueError(
                f"sync {sync.id} reads the API provider {sync.provider!r}: "
                f"{' and '.join(sql_only)} apply to SQL syncs only"
            )
        from sync_pipelines.providers.provider_sync import sync_provider

        return sync_provider(
            sync.id,
            client,
            full_refresh=full_refresh,
            run_id=run_id,
            runner_id=runner_id,
            batch_size=batch_size,
            on_progress=on_progress,
            count_rows=count_rows,
        )
    from sync_pipelines.engine.sql_sync import run_sync

    return run_sync(
        sync.id,
        client,
        full_refresh=full_refresh,
        batch_size=batch_size,
        run_id=run_id,
        runner_id=runner_id,
        on_progress=on_progress,
        count_rows=count_rows,
        allow_mass_delete=allow_mass_delete,
        workers=workers,
    )
