"""The run skeleton shared by the SQL sync (:mod:`~sync_pipelines.engine.run`) and the
API-provider sync (:mod:`sync_pipelines.providers.provider_sync`): how a leased run ends.

Both runners take a run lease, keep it with a heartbeat while they read, map, write, commit and
checkpoint, then finish the run. :func:`recording_failures` is the part they share, written
once: a lost lease (409) stops the run; any other error marks it failed with the runner's
(redacted) failure message; both raise :class:`~sync_pipelines.engine.errors.SyncRunError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import RunStats, RunStatus
from sync_pipelines.contract.protocol import SyncApi
from sync_pipelines.engine.errors import SyncRunError

__all__ = ["recording_failures"]


@contextmanager
def recording_failures(
    client: SyncApi,
    *,
    sync_id: int,
    run_id: int,
    stats: Callable[[], RunStats],
    failure_message: Callable[[BaseException], str],
    logger: logging.Logger,
    chain: bool = True,
) -> Iterator[None]:
    """The run's work, inside; how it ends when it fails.

    Args:
        client: the sync API that records the failure.
        sync_id, run_id: the run.
        stats: the run's counters so far (recorded with the failure).
        failure_message: the run's message for an error (names what failed, never a secret).
        logger: the runner's logger.
        chain: chain the error to the :class:`SyncRunError` (``False``: a provider's error may
            carry what its message leaves out).

    Raises:
        SyncRunError: the run lost its lease, or failed (and is marked failed with the message).
    """
    try:
        yield
    except ConflictError as error:
        message = f"sync {sync_id}: run {run_id} lost its lease and stopped: {error}"
        logger.error(message)
        raise SyncRunError(message, sync_id=sync_id, run_id=run_id) from (
            error if chain else None
        )
    except Exception as error:
        message = failure_message(error)
        logger.error("sync %s run %s failed: %s", sync_id, run_id, message)
        try:
            client.finish_run(run_id, status=RunStatus.FAILED, stats=stats(), error=message)
        except Exception:  # noqa: BLE001 - the run's own error matters more
            logger.exception("sync %s run %s: could not record the failure", sync_id, run_id)
        raise SyncRunError(message, sync_id=sync_id, run_id=run_id) from (
            error if chain else None
        )
