"""The code passes the linter and is formatted as ``ruff format`` formats it (``make lint``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["sync_pipelines", "sync_pipelines_tests", "bench"]


@pytest.mark.parametrize(
    "command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"]
)
def test_ruff(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CHECKED],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
