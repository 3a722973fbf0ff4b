"""The demo code location (``workspace.yaml`` loads it; ``make run`` opens it in Dagster).

On load it makes sure the demo exists in the local home (``./.sync_pipelines``): one SQLite app
database per end customer with two weeks of events (and, at most once a minute, a little new
activity so incremental runs have work), a DuckDB warehouse, and the sources, destination,
object and syncs of ``sync_pipelines/demo/syncs.yaml`` in the embedded sync API (or the server
at ``$SYNC_API_URL``). Then it builds:

- ``analytics/events``: the events object, partitioned by end customer, with its checks;
- ``analytics/daily_events``: a downstream aggregate in DuckDB;
- ``sync_job`` (Launchpad: pre-filled to create Umbrella's sync, then run it), ``run_sync_job``;
- a schedule for the hourly and daily syncs, and ``sync_scheduler`` (running) for the rest.
"""

import os
from pathlib import Path

from dagster import DefaultSensorStatus, Definitions

from sync_pipelines import settings
from sync_pipelines.demo.app_databases import create_app_databases, simulate_activity
from sync_pipelines.demo.assets import build_daily_events_asset
from sync_pipelines.orchestration import (
    SyncApiResource,
    SyncTranslator,
    apply_syncs_file,
    build_sync_definitions,
    load_syncs_yaml,
)
from sync_pipelines.orchestration.catalog import SyncCatalog

DEMO_SYNCS_FILE = Path(__file__).parent / "demo" / "syncs.yaml"
_CHECKOUT = Path(__file__).resolve().parent.parent


def _demo_home() -> Path:
    """The local home; in a source checkout, the one beside ``workspace.yaml``."""
    if not os.environ.get(settings.HOME_ENV) and (_CHECKOUT / "workspace.yaml").exists():
        os.environ[settings.HOME_ENV] = str(_CHECKOUT / settings.DEFAULT_HOME)
    return settings.home()


def _launchpad_config(applied) -> dict:
    """``sync_job``'s pre-filled config: create Umbrella's events sync, then run it."""
    mappings = [
        {"source_field_name": source, "destination_field_name": destination}
        for source, destination in (
            ("id", "event_id"),
            ("user_id", "user_id"),
            ("event_name", "event_name"),
            ("amount", "amount"),
            ("occurred_at", "occurred_at"),
            ("updated_at", "updated_at"),
        )
    ]
    return {
        "ops": {
            "create_sync_op": {
                "config": {
                    "display_name": "Umbrella events",
                    "source_id": applied.source_ids["Umbrella app"],
                    "object_id": applied.object_ids["Events"],
                    "namespace": "main",
                    "table_name": "events",
                    "field_mappings": mappings,
                    "frequency": 30,
                    "frequency_units": "minutes",
                }
            },
            "run_sync_op": {"config": {"full_refresh": False}},
        }
    }


def build_demo_definitions() -> Definitions:
    """Set up the demo data and build its code location."""
    demo = _demo_home() / "demo"
    create_app_databases(demo)
    simulate_activity(demo)
    sync_api = SyncApiResource()
    try:
        client = sync_api.get_client()
        applied = apply_syncs_file(client, load_syncs_yaml(DEMO_SYNCS_FILE))
        catalog = SyncCatalog.load(client)
    finally:
        sync_api.close()
    translator = SyncTranslator()
    events = next(o for o in catalog.object_props() if o.object.id == applied.object_ids["Events"])
    events_key = translator.get_asset_spec(events).key
    syncs = build_sync_definitions(
        sync_api=sync_api,
        sync_job_config=_launchpad_config(applied),
        sensor_default_status=DefaultSensorStatus.RUNNING,
    )
    daily_events = build_daily_events_asset(
        warehouse=demo / "warehouse.duckdb",
        events=events_key,
        pool=translator.get_pool(events, events_key),
    )
    return Definitions.merge(syncs, Definitions(assets=[daily_events]))


defs = build_demo_definitions()
