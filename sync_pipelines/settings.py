"""Where sync-pipelines keeps its local state, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SYNC_PIPELINES_HOME"
SECRET_KEY_ENV = "SYNC_PIPELINES_SECRET_KEY"
DATABASE_URL_ENV = "SYNC_PIPELINES_DATABASE_URL"
DEFAULT_HOME = ".sync_pipelines"


def home() -> Path:
    """The local home: ``$SYNC_PIPELINES_HOME``, default ``./.sync_pipelines`` (created)."""
    path = Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The sync API's store: ``$SYNC_PIPELINES_DATABASE_URL`` or a SQLite file in the home."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{home() / 'sync_api.sqlite'}"
