"""What entry points import: the API serves without the data plane; the embedded client is light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sync_pipelines.api.store import open_store

DATA_PLANE = {"pyarrow", "duckdb", "adbc_driver_manager", "pgpq", "dagster"}
_DATA_PLANE_MODULES = (
    "sync_pipelines.engine.sql",
    "sync_pipelines.engine.sql_sync",
    "sync_pipelines.engine.write",
    "sync_pipelines.orchestration",
)
_PROVIDER_RUNTIME = {
    "sync_pipelines.providers.provider_sync",
    "sync_pipelines.providers.fetch",
    "sync_pipelines.providers.records",
    "sync_pipelines.providers._http",
}

_LAZY_FOR_THE_API = (
    "sync_pipelines.engine",
    "sync_pipelines.providers",
    "sync_pipelines.orchestration",
)


def _modules_after(code: str) -> set[str]:
    """The modules loaded by a fresh interpreter once it ran ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _packages(modules: set[str], names: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in names)


def test_serving_the_api_loads_no_data_plane():
    modules = _modules_after("import sync_pipelines.api.app")
    assert _packages(modules, DATA_PLANE) == []
    data_plane_modules = [
        m for m in modules if m.startswith(_DATA_PLANE_MODULES) or m in _PROVIDER_RUNTIME
    ]
    assert data_plane_modules == []
    # the sync API imports the engine and the providers only lazily, where it needs them
    assert [m for m in modules if m.startswith(_LAZY_FOR_THE_API)] == []


def test_the_embedded_client_on_a_migrated_store_loads_only_the_store():
    open_store().dispose()  # the store of this test's home, migrated once
    modules = _modules_after(
        "from sync_pipelines.api.embedded import EmbeddedSyncApiClient\n"
        "client = EmbeddedSyncApiClient.open()\n"
        "assert client.list_syncs() == []\n"
        "client.close()"
    )
    heavy = DATA_PLANE | {"alembic", "sqlglot", "fastapi", "starlette", "httpx", "uvicorn"}
    assert _packages(modules, heavy) == []
    assert "sync_pipelines.providers.presets" not in modules
    assert [m for m in modules if m.startswith(_DATA_PLANE_MODULES) or m in _PROVIDER_RUNTIME] == []


def test_a_custom_join_is_still_checked_when_sqlglot_loads_late():
    modules = _modules_after(
        "from sync_pipelines.contract.models import check_read_only_select\n"
        "import sys\n"
        "assert 'sqlglot' not in sys.modules\n"
        "assert check_read_only_select('SELECT 1;') == 'SELECT 1'\n"
        "try:\n"
        "    check_read_only_select('DELETE FROM t')\n"
        "except ValueError as error:\n"
        "    assert 'read-only SELECT' in str(error)\n"
        "else:\n"
        "    raise AssertionError('a DELETE passed')"
    )
    assert "sqlglot" in modules


def test_the_layer_contracts_hold():
    """``lint-imports`` checks the contracts in pyproject.toml (every import, also lazy ones)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9 kept, 0 broken" in done.stdout


def test_no_two_modules_share_a_name():
    """Names say what a module is: two modules never share a name for different jobs.

    ``errors.py`` is the one name several packages use for the same job (that package's
    exceptions)."""
    package = Path(__file__).resolve().parents[1] / "sync_pipelines"
    names: dict[str, list[str]] = {}
    for path in package.rglob("*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(package)))
    shared = {name: paths for name, paths in names.items() if len(paths) > 1}
    assert set(shared) <= {"__init__.py", "errors.py"}, shared
