"""Setting up the demo: its home, its app databases, and its syncs applied to the sync API.

``sync-pipelines dev`` (``make run``) calls :func:`prepare_demo` before it starts Dagster; the
code location (``sync_pipelines/definitions.py``) only reads the sync API.
"""

from __future__ import annotations

import os
from pathlib import Path

from sync_pipelines.common import settings
from sync_pipelines.demo.app_databases import create_app_databases, simulate_activity

DEMO_SYNCS_FILE = Path(__file__).parent / "syncs.yaml"
_CHECKOUT = Path(__file__).resolve().parent.parent.parent


def demo_home() -> Path:
    """The local home; in a source checkout, the one beside ``workspace.yaml``."""
    if not os.environ.get(settings.HOME_ENV) and (_CHECKOUT / "workspace.yaml").exists():
        os.environ[settings.HOME_ENV] = str(_CHECKOUT / settings.DEFAULT_HOME)
    return settings.home()


def refresh_demo_data() -> Path:
    """Create the end customers' app databases (once), add a little activity; their folder."""
    folder = demo_home() / "demo"
    create_app_databases(folder)
    simulate_activity(folder)
    return folder


def prepare_demo():
    """Create the demo data and apply ``demo/syncs.yaml`` to the sync API.

    Returns:
        The :class:`~sync_pipelines.orchestration.AppliedSyncs`.
    """
    from sync_pipelines.api.connect import open_client
    from sync_pipelines.orchestration.syncs_file import apply_syncs_file, load_syncs_yaml

    refresh_demo_data()
    client = open_client()
    try:
        return apply_syncs_file(client, load_syncs_yaml(DEMO_SYNCS_FILE))
    finally:
        client.close()
