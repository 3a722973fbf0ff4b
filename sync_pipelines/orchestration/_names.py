"""Names and tags the plugin's definitions share: slugs, partitions names, run tags."""

from __future__ import annotations

import re
import zlib

from dagster import AssetKey

SYNC_ID_TAG = "sync_pipelines/sync_id"
"""Run tag: the sync a run executes (``dagster.yaml`` limits runs per value to one)."""
REQUESTED_RUN_TAG = "sync_pipelines/requested_run_id"
"""Run tag: the sync API run requested with ``POST /sync/{id}/run`` that a run starts."""
SCHEDULER_TAG = "sync_pipelines/scheduled_by"
"""Run tag: ``sync_scheduler`` or a schedule's name."""

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")


def slug(text: str) -> str:
    """``text`` as a Dagster name: letters, digits and ``_`` only (never empty)."""
    cleaned = _NOT_NAME.sub("_", text).strip("_").lower()
    if not cleaned:
        return f"x{zlib.crc32(text.encode()):08x}"
    return cleaned if not cleaned[0].isdigit() else f"_{cleaned}"


def key_slug(key: AssetKey) -> str:
    """An asset key as one Dagster name: ``["analytics", "events"]`` -> ``analytics__events``."""
    return "__".join(slug(part) for part in key.path)


def partitions_def_name(key: AssetKey) -> str:
    """The dynamic partitions (end customers) of an object's asset, derived from its key."""
    return f"{key_slug(key)}__end_customers"
