"""The package's metadata: ``pip install -e .`` prints no setuptools deprecation box."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_license_is_an_spdx_expression_setuptools_reads_without_a_warning():
    project = tomllib.loads(PYPROJECT.read_text())
    # a table (`license = {text = ...}`) or a "License ::" classifier makes setuptools >= 77
    # print its deprecation box on every install
    assert project["project"]["license"] == "Apache-2.0"
    assert not [c for c in project["project"].get("classifiers", []) if c.startswith("License")]
    assert "setuptools>=77" in project["build-system"]["requires"]
