"""The demo code location (``workspace.yaml`` loads it; ``make run`` opens it in Dagster).

``sync-pipelines dev`` (what ``make run`` starts) first applies ``sync_pipelines/demo/syncs.yaml``
to the embedded sync API (or the server at ``$SYNC_API_URL``); this module only reads the sync
API, through the cached snapshot of :func:`~sync_pipelines.orchestration.build_sync_definitions`.
On load it refreshes the demo data in the local home (``./.sync_pipelines``): one SQLite app
database per end customer, with, at most once a minute, a little new activity so incremental
runs have work. Then it builds:

- ``analytics/events``: the events object, partitioned by end customer, with its checks;
- ``analytics/daily_events``: a downstream aggregate in DuckDB;
- ``sync_job`` (Launchpad: pre-filled to create Umbrella's sync, then run it), ``run_sync_job``;
- a schedule for the hourly and daily syncs, and ``sync_scheduler`` (running) for the rest.
"""

import logging

from dagster import DefaultSensorStatus, Definitions

from sync_pipelines.demo.daily_events import build_daily_events_asset
from sync_pipelines.demo.setup import DEMO_SYNCS_FILE, refresh_demo_data
from sync_pipelines.orchestration import SyncApiResource, SyncCatalog, SyncTranslator
from sync_pipelines.orchestration.state import SyncApiDefsLoader
from sync_pipelines.orchestration.sync_definitions import sync_definitions_from_catalog

logger = logging.getLogger("sync_pipelines.demo")

_UMBRELLA_MAPPINGS = (
    ("id", "event_id"),
    ("user_id", "user_id"),
    ("event_name", "event_name"),
    ("amount", "amount"),
    ("occurred_at", "occurred_at"),
    ("updated_at", "updated_at"),
)


def _launchpad_config(source_id: int, object_id: int) -> dict:
    """``sync_job``'s pre-filled config: create Umbrella's events sync, then run it."""
    return {
        "ops": {
            "create_sync_op": {
                "config": {
                    "display_name": "Umbrella events",
                    "source_id": source_id,
                    "object_id": object_id,
                    "namespace": "main",
                    "table_name": "events",
                    "field_mappings": [
                        {"source_field_name": source, "destination_field_name": destination}
                        for source, destination in _UMBRELLA_MAPPINGS
                    ],
                    "frequency": 30,
                    "frequency_units": "minutes",
                }
            },
            "run_sync_op": {"config": {"full_refresh": False}},
        }
    }


def _demo_definitions(catalog: SyncCatalog, sync_api: SyncApiResource, warehouse) -> Definitions:
    events = catalog.object_named("Events")
    umbrella = catalog.source_named("Umbrella app")
    if events is None or umbrella is None:
        logger.warning(
            "the demo's syncs are not in the sync API: run `sync-pipelines apply %s` "
            "(make run does), then reload the code location",
            DEMO_SYNCS_FILE,
        )
    syncs = sync_definitions_from_catalog(
        catalog,
        sync_api=sync_api,
        syncs_file=DEMO_SYNCS_FILE,
        sync_job_config=(
            _launchpad_config(umbrella.id, events.id) if events and umbrella else None
        ),
        sensor_default_status=DefaultSensorStatus.RUNNING,
    )
    if events is None:
        return syncs
    translator = SyncTranslator()
    (props,) = catalog.object_props([events.id])
    events_key = translator.get_asset_spec(props).key
    daily_events = build_daily_events_asset(
        warehouse=warehouse, events=events_key, pool=translator.get_pool(props, events_key)
    )
    return Definitions.merge(syncs, Definitions(assets=[daily_events]))


def build_demo_definitions() -> Definitions:
    """Refresh the demo data and build its code location from the sync API's snapshot."""
    demo = refresh_demo_data()
    sync_api = SyncApiResource()
    loader = SyncApiDefsLoader(
        sync_api, lambda catalog: _demo_definitions(catalog, sync_api, demo / "warehouse.duckdb")
    )
    return loader.build_defs()


defs = build_demo_definitions()
