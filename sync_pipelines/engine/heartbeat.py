"""Keep a run's lease while its runner is alive: a background thread renews it every few seconds.

The sync API expires a lease ``lease_seconds`` (default 30) after the runner last reported, so a
runner killed with -9 blocks its sync only that long. A live runner never loses its lease to a
long batch: the heartbeat is independent of batches. Once a heartbeat is refused (the run was
cancelled, or taken over after its lease expired), :meth:`LeaseHeartbeat.check` raises, so the
runner stops before its next commit or checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from sync_pipelines.common import settings
from sync_pipelines.contract.errors import ConflictError
from sync_pipelines.contract.models import SyncRun
from sync_pipelines.contract.protocol import SyncApi

__all__ = ["LeaseHeartbeat", "heartbeat_interval", "runner_process"]

logger = logging.getLogger("sync_pipelines.engine")

MAX_HEARTBEAT_INTERVAL = 5.0


def heartbeat_interval(lease_seconds: float | None) -> float:
    """Seconds between heartbeats: a third of the lease's TTL, at most 5 s."""
    ttl = lease_seconds or settings.DEFAULT_LEASE_TTL_SECONDS
    return min(ttl / 3, MAX_HEARTBEAT_INTERVAL)


def runner_process() -> dict[str, Any]:
    """This process, as ``start_run`` records it: ``runner_host`` and ``runner_pid``."""
    return {"runner_host": socket.gethostname()[:255], "runner_pid": os.getpid()}


class LeaseHeartbeat:
    """Renews a run's lease from a daemon thread while the ``with`` block runs.

    Args:
        client: the sync API that granted the lease.
        run: the run (``lease.run``); its ``lease_seconds`` sets the interval.
        interval: seconds between heartbeats (default :func:`heartbeat_interval`).
    """

    def __init__(self, client: SyncApi, run: SyncRun, *, interval: float | None = None) -> None:
        self.client = client
        self.run_id = run.id
        self.sync_id = run.sync_id
        self.interval = interval or heartbeat_interval(run.lease_seconds)
        self._stopping = threading.Event()
        self._lost_event = threading.Event()
        self._lost: ConflictError | None = None
        self._thread = threading.Thread(
            target=self._beat, name=f"sync-{run.sync_id}-run-{run.id}-heartbeat", daemon=True
        )

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        # a heartbeat still in flight is harmless: the sync API refuses it once the run finished
        self._thread.join(timeout=self.interval)

    @property
    def lost(self) -> ConflictError | None:
        """The sync API's refusal, once a heartbeat was refused (else ``None``)."""
        return self._lost

    def check(self) -> None:
        """Raise the refusal if the run lost its lease; call before each commit and checkpoint.

        Raises:
            ConflictError: the run was cancelled or taken over; it must not write any more.
        """
        if self._lost is not None:
            raise self._lost

    def sleep(self, seconds: float) -> None:
        """Sleep (the lease is kept meanwhile), waking early to raise once it is lost."""
        if self._lost_event.wait(max(seconds, 0.0)):
            self.check()

    def _beat(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.client.heartbeat(self.run_id)
            except ConflictError as error:
                if self._stopping.is_set():
                    return
                logger.error(
                    "sync %s run %s: heartbeat refused, stopping at the next checkpoint: %s",
                    self.sync_id,
                    self.run_id,
                    error,
                )
                self._lost = error
                self._lost_event.set()
                return
            except Exception as error:  # noqa: BLE001 - the lease outlives a few missed beats
                logger.warning(
                    "sync %s run %s: heartbeat failed, retrying in %.1fs: %s",
                    self.sync_id,
                    self.run_id,
                    self.interval,
                    error,
                )
