"""The code locations: built from a syncs.yaml, the demo, and the component."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml
from dagster import AssetKey, Definitions

from sync_pipelines.common import settings
from sync_pipelines.orchestration import (
    SyncApiResource,
    SyncsFileError,
    apply_syncs,
    build_sync_definitions,
)
from sync_pipelines.orchestration.components import SyncPipelinesComponent
from sync_pipelines_tests.orchestration.conftest import EVENTS_JOB, PARTITIONS, build_defs

REPOSITORY = Path(__file__).resolve().parents[2]


def test_definitions_from_a_syncs_file_are_loadable(setup):
    defs = build_defs(
        setup,
        {"acme": "sync_frequency: 1h", "globex": "sync_frequency: 45m"},
        extra_sources=["initech"],
    )

    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {job.name for job in repository.get_all_jobs()} >= {
        "sync_job",
        "run_sync_job",
        EVENTS_JOB,
    }
    assert [s.name for s in repository.schedule_defs] == ["analytics__events__acme_schedule"]
    assert [s.name for s in repository.sensor_defs] == ["sync_scheduler"]
    assert repository.assets_defs_by_key[AssetKey(["analytics", "events"])]


def test_applying_the_same_file_again_changes_nothing(setup):
    syncs = {"acme": "sync_frequency: 1h", "globex": "sync_frequency: 45m"}
    build_defs(setup, syncs)
    before = [s.model_dump() for s in setup.client.list_syncs()]

    build_defs(setup, syncs)

    assert [s.model_dump() for s in setup.client.list_syncs()] == before


def test_loading_never_writes_to_the_sync_api(setup):
    path = setup.write_syncs_file({"acme": "sync_frequency: 1h"})

    defs = build_sync_definitions(syncs_file=path, sync_api=SyncApiResource())

    assert setup.client.list_sources() == [] and setup.client.list_syncs() == []
    assert defs.get_repository_def().assets_defs_by_key == {}
    # the file is applied by an explicit step: apply_syncs_job (or sync-pipelines apply)
    result = defs.get_job_def("apply_syncs_job").execute_in_process()
    assert result.success
    assert [s.display_name for s in setup.client.list_syncs()] == ["acme events"]


def test_a_bad_file_fails_apply_naming_the_entry(setup):
    path = setup.write_syncs_file({"acme": "sync_frequency: often"})

    with pytest.raises(SyncsFileError, match=r"syncs\[0\] 'acme events': sync_frequency"):
        apply_syncs(setup.client, path)
    assert setup.client.list_sources() == []


def test_the_demo_code_location_is_loadable_and_works(instance):
    from sync_pipelines.definitions import build_demo_definitions
    from sync_pipelines.demo.setup import prepare_demo

    prepare_demo()  # what sync-pipelines dev (make run) does before starting Dagster
    defs = build_demo_definitions()
    Definitions.validate_loadable(defs)
    prepare_demo()
    again = build_demo_definitions()  # applying again creates nothing new

    from sync_pipelines.api.connect import open_client

    client = open_client()
    assert len(client.list_syncs()) == 3
    assert len(client.list_sources()) == 4
    home = settings.home()
    assert (home / "demo" / "app_acme.sqlite").exists()

    # the Launchpad's pre-filled config creates Umbrella's sync and loads its events
    result = again.get_job_def("sync_job").execute_in_process(instance=instance)
    assert result.success
    (umbrella,) = client.list_syncs(end_customer_id="umbrella")
    assert instance.has_dynamic_partition(PARTITIONS, "umbrella")

    instance.add_dynamic_partitions(PARTITIONS, ["acme"])
    acme = again.resolve_job_def(EVENTS_JOB).execute_in_process(
        instance=instance, partition_key="acme"
    )
    assert acme.success
    daily = again.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[AssetKey(["analytics", "daily_events"])]
    )
    assert daily.success
    with duckdb.connect(str(home / "demo" / "warehouse.duckdb")) as db:
        customers = db.execute(
            "SELECT DISTINCT end_customer_id FROM analytics.daily_events ORDER BY 1"
        ).fetchall()
    assert customers == [("acme",), ("umbrella",)]
    assert umbrella.frequency == 30


def test_the_workspace_loads_with_the_dagster_cli(tmp_path, _isolated_home):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPOSITORY / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}

    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful for code location sync_pipelines_demo" in (
        done.stdout + done.stderr
    )
    assert (_isolated_home / "demo" / "warehouse.duckdb").parent.exists()


def test_the_component_builds_the_same_definitions(setup):
    apply_syncs(setup.client, setup.write_syncs_file({"acme": "sync_frequency: 1h"}))
    from dagster.components import build_defs_for_component

    defs = build_defs_for_component(
        component=SyncPipelinesComponent(
            syncs_file=str(setup.syncs_file), key_prefix=["raw"], group_name="synced"
        )
    )

    asset = defs.get_assets_def(AssetKey(["raw", "analytics", "events"]))
    assert next(iter(asset.specs)).group_name == "synced"
    assert asset.partitions_def.name == "raw__analytics__events__end_customers"
    Definitions.validate_loadable(defs)


def test_the_component_loads_from_defs_yaml_with_inline_syncs(setup):
    from dagster.components.testing import create_defs_folder_sandbox

    setup.write_syncs_file({"acme": "sync_frequency: 45m"})
    sections = yaml.safe_load(setup.syncs_file.read_text())
    with create_defs_folder_sandbox() as sandbox:
        defs_path = sandbox.defs_folder_path / "syncs"
        defs_path.mkdir(parents=True)
        (defs_path / "defs.yaml").write_text(
            yaml.safe_dump(
                {
                    "type": "sync_pipelines.orchestration.components.SyncPipelinesComponent",
                    "attributes": {**sections, "sensor_running": True},
                }
            )
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert setup.client.list_syncs() == []  # loading never writes
            assert defs.get_repository_def().assets_defs_by_key == {}
        apply_syncs(setup.client, defs_path / "defs.yaml")  # sync-pipelines apply defs.yaml
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            assert isinstance(component, SyncPipelinesComponent)
            assert defs.get_assets_def(AssetKey(["analytics", "events"]))
            sensor = defs.get_repository_def().get_sensor_def("sync_scheduler")
            assert sensor.default_status.value == "RUNNING"
    assert [s.display_name for s in setup.client.list_syncs()] == ["acme events"]


def test_an_inline_error_names_the_defs_yaml(setup, tmp_path):
    defs_yaml = tmp_path / "defs.yaml"
    defs_yaml.write_text(
        yaml.safe_dump(
            {
                "type": "sync_pipelines.orchestration.components.SyncPipelinesComponent",
                "attributes": {
                    "destinations": [
                        {"name": "W", "connection_type": "duckdb", "url": "duckdb:///w.db"}
                    ],
                    "objects": [
                        {
                            "name": "O",
                            "destination": "Elsewhere",
                            "namespace": "a",
                            "table_name": "t",
                            "end_customer_id_field": "c",
                        }
                    ],
                },
            }
        )
    )

    with pytest.raises(SyncsFileError, match=r"defs.yaml: objects\[0\] 'O': destination: "):
        apply_syncs(setup.client, defs_yaml)


def test_the_public_names_are_exported():
    import sync_pipelines
    import sync_pipelines.orchestration as orchestration

    for name in orchestration.__all__:
        assert getattr(orchestration, name) is not None
    assert sync_pipelines.SyncApiResource is orchestration.SyncApiResource
    assert sync_pipelines.SyncPipelinesComponent is SyncPipelinesComponent
    assert textwrap  # used by the other modules' helpers


def test_the_launchpad_shows_the_resource_docs_as_markdown():
    from sync_pipelines.orchestration import CreateSyncConfig, SyncApiResource

    description = SyncApiResource().get_resource_definition().description
    assert description.startswith("The sync API, as ops, assets, schedules and sensors reach it.")
    fields = [f.description or "" for f in SyncApiResource.model_fields.values()]
    for text in [description, *fields]:
        assert ".. " not in text and ":class:" not in text and "``" not in text
        assert not any(line.startswith("    ") for line in text.splitlines())  # no code block
    for field in CreateSyncConfig.model_fields.values():
        assert "``" not in (field.description or "") and ":class:" not in (field.description or "")


def _config_classes():
    from dagster import Config

    import sync_pipelines.orchestration.apply
    import sync_pipelines.orchestration.execution
    import sync_pipelines.orchestration.ops
    import sync_pipelines.orchestration.range_backfill  # noqa: F401

    def below(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted(
        {c for c in below(Config) if c.__module__.startswith("sync_pipelines.")},
        key=lambda c: c.__name__,
    )


def test_the_launchpad_shows_every_config_doc_as_plain_text():
    """Dagster shows a config class's docstring and its fields' descriptions as they are."""
    from dagster._config.pythonic_config.config import infer_schema_from_config_class

    classes = _config_classes()
    assert {"CreateSyncConfig", "RunSyncConfig", "SyncAssetConfig"} <= {c.__name__ for c in classes}
    for cls in classes:
        field = infer_schema_from_config_class(cls)
        texts = [field.description or ""]
        texts += [f.description or "" for f in field.config_type.fields.values()]
        for text in texts:
            assert not re.search(r"``|:(class|func|meth|attr):|^\.\. ", text, re.M), (cls, text)
            assert not any(line.startswith(" ") for line in text.splitlines()), (cls, text)


def test_loading_the_demo_prints_no_beta_or_preview_warning(_isolated_home):
    """Each process that loads the location (code server, daemon, every run worker) would
    print Dagster's beta and preview notices for the APIs we use knowingly."""
    from sync_pipelines.api.embedded import EmbeddedSyncApiClient
    from sync_pipelines.demo.setup import DEMO_SYNCS_FILE

    with EmbeddedSyncApiClient.open() as client:  # the demo's syncs: every kind of definition
        apply_syncs(client, DEMO_SYNCS_FILE)
    load = (
        "from sync_pipelines.definitions import defs\n"
        "repository = defs.get_repository_def()\n"
        "assert repository.get_sensor_def('sync_scheduler') and repository.schedule_defs\n"
        "assert repository.assets_defs_by_key and repository.get_all_jobs()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", load],
        env={**os.environ, "PYTHONWARNINGS": "always"},  # every warning, each time
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert "BetaWarning" not in done.stderr and "PreviewWarning" not in done.stderr, done.stderr
