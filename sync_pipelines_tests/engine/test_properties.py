"""Property: after every run the destination equals a model of it, whatever the ties, NULL
cursors and batch sizes (hypothesis generates the histories)."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync_pipelines.api.embedded import EmbeddedSyncApiClient
from sync_pipelines.contract.models import SyncMode
from sync_pipelines.engine import run_sync
from sync_pipelines_tests.engine.conftest import Database, Scenario, at, events_table


@dataclass(frozen=True)
class Write:
    """Insert row ``id`` or, if it exists, update it; the clock may tick first."""

    id: int
    null_cursor: bool
    tick: bool


@dataclass(frozen=True)
class Run:
    batch_size: int


STEPS = st.lists(
    st.one_of(
        st.builds(
            Write,
            id=st.integers(1, 12),
            null_cursor=st.sampled_from([True, False, False]),
            tick=st.sampled_from([True, False, False]),  # mostly ties
        ),
        st.builds(Run, batch_size=st.integers(1, 4)),
    ),
    min_size=3,
    max_size=20,
).map(lambda steps: [*steps, Run(batch_size=3)])
MODES = st.sampled_from([SyncMode.INCREMENTAL_UPDATE, SyncMode.INCREMENTAL_APPEND])


def check_history(scenario: Scenario, mode: SyncMode, steps: list[Write | Run]) -> None:
    """Apply ``steps`` to the source, run the sync at each Run, compare with the model."""
    table = scenario.source.create(events_table(scenario.source, scenario.table_name + "_src"))
    scenario.make_object(mode=mode)
    sync = scenario.make_sync(table=table.name)
    source: dict[int, dict] = {}
    destination: dict[int, dict] = {}
    clock = versions = 0
    for step in steps:
        if isinstance(step, Write):
            clock += step.tick
            versions += 1
            row = {
                "id": step.id,
                "name": f"v{versions}",
                "amount": decimal.Decimal("1.50"),
                "updated_at": None if step.null_cursor else at(clock),
            }
            statement = (
                table.update().where(table.c.id == step.id).values(row)
                if step.id in source
                else table.insert().values(row)
            )
            scenario.source.execute(statement)
            source[step.id] = row
            continue
        run_sync(sync.id, scenario.client, batch_size=step.batch_size)
        for key, row in source.items():
            # update keeps every row current; append inserts each key once, as first read
            if mode is SyncMode.INCREMENTAL_UPDATE or key not in destination:
                destination[key] = row
        assert scenario.rows() == [
            {
                "ecid": "acme",
                **row,
                "updated_at": row["updated_at"] and row["updated_at"].replace(tzinfo=None),
            }
            for _, row in sorted(destination.items())
        ], f"after {steps[: steps.index(step) + 1]}"


PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@settings(PROPERTY, max_examples=20)
@given(mode=MODES, steps=STEPS)
@example(  # committed later at the last cursor value with a lower key
    mode=SyncMode.INCREMENTAL_APPEND,
    steps=[Write(5, False, False), Run(2), Write(1, False, False), Run(3)],
)
@example(  # NULL cursors: paged by key, updated, given a cursor, set back to NULL
    mode=SyncMode.INCREMENTAL_UPDATE,
    steps=[
        *[Write(i, True, False) for i in (4, 1, 3, 2, 5)],
        Write(6, False, False),
        Run(2),
        Write(3, True, False),
        Write(4, False, True),
        Run(1),
        Write(6, True, True),
        Write(4, True, False),
        Run(3),
    ],
)
def test_sqlite_to_duckdb_matches_the_model(
    tmp_path: Path, client: EmbeddedSyncApiClient, mode: SyncMode, steps: list
) -> None:
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    made = []
    for kind, name in (("sqlite", "source"), ("duckdb", "destination")):
        url = f"{kind}:///{folder / name}.{kind}"
        made.append(Database(kind, url, "main", sa.create_engine(url)))
    try:
        check_history(Scenario(client, *made), mode, steps)
    finally:
        for database in made:
            database.engine.dispose()


@pytest.fixture
def postgres_source(databases: Callable[..., Database]) -> Database:
    return databases("postgres", "source")


@settings(PROPERTY, max_examples=6)
@given(mode=MODES, steps=STEPS)
def test_postgres_to_duckdb_matches_the_model(
    tmp_path: Path,
    client: EmbeddedSyncApiClient,
    postgres_source: Database,
    mode: SyncMode,
    steps: list,
) -> None:
    url = f"duckdb:///{tmp_path / uuid.uuid4().hex}.duckdb"
    destination = Database("duckdb", url, "main", sa.create_engine(url))
    name = f"events_{uuid.uuid4().hex[:8]}"
    try:
        check_history(Scenario(client, postgres_source, destination, table_name=name), mode, steps)
    finally:
        destination.engine.dispose()
