"""Where sync-pipelines keeps its local state, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SYNC_PIPELINES_HOME"
SECRET_KEY_ENV = "SYNC_PIPELINES_SECRET_KEY"
DATABASE_URL_ENV = "SYNC_PIPELINES_DATABASE_URL"
FILE_ROOTS_ENV = "SYNC_PIPELINES_FILE_ROOTS"
LEASE_TTL_ENV = "SYNC_PIPELINES_LEASE_TTL_SECONDS"
DEFAULT_HOME = ".sync_pipelines"
DEFAULT_LEASE_TTL_SECONDS = 30.0
DEFAULT_BATCH_SIZE = 100_000
"""Rows per batch (one commit and checkpoint) unless a run says otherwise."""


def home() -> Path:
    """The local home: ``$SYNC_PIPELINES_HOME``, default ``./.sync_pipelines`` (created)."""
    path = Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The sync API's store: ``$SYNC_PIPELINES_DATABASE_URL`` or a SQLite file in the home."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{home() / 'sync_api.sqlite'}"


def file_roots() -> list[str]:
    """The directories a server lets organizations' file databases (SQLite, DuckDB) use.

    ``$SYNC_PIPELINES_FILE_ROOTS``, separated by ``os.pathsep`` (``:``); ``{org}`` in a root
    stands for the organization's name. Unset: file databases are refused by a server.
    """
    value = os.environ.get(FILE_ROOTS_ENV) or ""
    return [root.strip() for root in value.split(os.pathsep) if root.strip()]


def lease_ttl_seconds() -> float:
    """How long a run lease outlives its runner's last heartbeat:
    ``$SYNC_PIPELINES_LEASE_TTL_SECONDS``, default 30 (read by the sync API's server)."""
    raw = os.environ.get(LEASE_TTL_ENV)
    if not raw:
        return DEFAULT_LEASE_TTL_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 86400:
        raise ValueError(f"{LEASE_TTL_ENV} must be a number of seconds in (0, 86400], not {raw!r}")
    return seconds
