"""A sync's health (Sequin's), from its recent runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from sync_pipelines.contract.models import (
    Health,
    HealthStatus,
    RunStatus,
)

HEALTH_WINDOW = 5


def no_runs_health(now: dt.datetime) -> dict[str, Any]:
    return Health(status=HealthStatus.OK, notes=["no run yet"], time=now).model_dump(mode="json")


def health_from_runs(recent: Iterable[sa.Row], now: dt.datetime) -> dict[str, Any]:
    """Health from the latest finished runs, newest first."""
    recent = list(recent)
    failed = [row for row in recent if row.status == RunStatus.FAILED.value]
    if recent and recent[0].status == RunStatus.FAILED.value:
        health = Health(status=HealthStatus.ERROR, notes=[f"last run failed: {recent[0].error}"])
    elif failed:
        health = Health(
            status=HealthStatus.WARN,
            notes=[f"{len(failed)} of the last {len(recent)} runs failed: {failed[0].error}"],
        )
    else:
        health = Health(status=HealthStatus.HEALTHY)
    health.time = now
    return health.model_dump(mode="json")
