"""The comparison table per route, the targets, and the JSON record under ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.measure import Measurement
from bench.verify import Comparison

# phase -> (the tool ours is measured against, max time ratio, max ours peak RSS in MB or None)
TARGETS: dict[str, tuple[str, float, float | None]] = {
    "initial": ("limit", 1.5, 300.0),
    "incremental": ("dlt", 0.5, None),
    "no-op": ("dlt", 0.5, None),
}


@dataclass
class PhaseResult:
    """One phase of one route: the rows it moves, and per tool a measurement and a check."""

    phase: str
    rows: int
    measurements: dict[str, Measurement] = field(default_factory=dict)
    checks: dict[str, Comparison] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def ratio(self, against: str = "dlt") -> float | None:
        """Ours' time over another tool's (``dlt`` or ``limit``)."""
        ours, other = self.measurements.get("ours"), self.measurements.get(against)
        if ours is None or other is None or other.seconds <= 0:
            return None
        return ours.seconds / other.seconds

    def target_verdict(self) -> str:
        against, max_ratio, max_mb = TARGETS[self.phase]
        ratio = self.ratio(against)
        if ratio is None:
            return "n/a"
        wanted = f"ours/{against} <= {max_ratio}x"
        met = ratio <= max_ratio
        if max_mb is not None:
            wanted += f", ours < {max_mb:.0f} MB"
            met = met and self.measurements["ours"].peak_rss_mb < max_mb
        return f"{wanted}: {'met' if met else 'MISSED'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "rows": self.rows,
            "ratio_ours_dlt": self.ratio("dlt"),
            "ratio_ours_limit": self.ratio("limit"),
            "target": self.target_verdict(),
            "measurements": {k: m.as_dict() for k, m in self.measurements.items()},
            "checks": {k: c.as_dict() for k, c in self.checks.items()},
            "errors": self.errors,
        }


def summarize(repeats: list[list[PhaseResult]]) -> list[PhaseResult]:
    """One result per phase from repeated runs: median time, highest peak, worst check."""
    if len(repeats) == 1:
        return repeats[0]
    summary = []
    for same_phase in zip(*repeats, strict=True):
        first = same_phase[0]
        result = PhaseResult(phase=first.phase, rows=first.rows)
        for run in same_phase:
            result.errors.update(run.errors)
            for tool, check in run.checks.items():
                if tool not in result.checks or not check.ok:
                    result.checks[tool] = check
        for tool in {tool for run in same_phase for tool in run.measurements}:
            samples = sorted(
                (run.measurements[tool] for run in same_phase if tool in run.measurements),
                key=lambda m: m.seconds,
            )
            median = samples[(len(samples) - 1) // 2]
            result.measurements[tool] = replace(
                median,
                peak_rss_mb=max(m.peak_rss_mb for m in samples),
                details={**median.details, "samples_seconds": [m.seconds for m in samples]},
            )
        summary.append(result)
    return summary


def table(route: str, phases: list[PhaseResult]) -> str:
    """A fixed-width table: one line per phase, ours beside dlt and the limit."""
    header = (
        "phase",
        "rows",
        "ours s",
        "dlt s",
        "limit s",
        "ours/limit",
        "ours/dlt",
        "ours rows/s",
        "ours peak MB",
        "dlt peak MB",
        "limit peak MB",
        "target",
    )
    lines = [header]
    for result in phases:
        ours, dlt = result.measurements.get("ours"), result.measurements.get("dlt")
        limit = result.measurements.get("limit")

        def seconds(tool: str, m: Measurement | None, result: PhaseResult = result) -> str:
            if m is None:
                return "FAILED" if tool in result.errors else "-"
            return f"{m.seconds:.2f}"

        def speed(m: Measurement | None, result: PhaseResult = result) -> str:
            if m is None or result.rows == 0 or m.seconds <= 0:
                return "-"
            return f"{result.rows / m.seconds:,.0f}"

        def peak(m: Measurement | None) -> str:
            return "-" if m is None else f"{m.peak_rss_mb:.0f}"

        def ratio(against: str, result: PhaseResult = result) -> str:
            value = result.ratio(against)
            return "-" if value is None else f"{value:.2f}"

        lines.append(
            (
                result.phase,
                f"{result.rows:,}",
                seconds("ours", ours),
                seconds("dlt", dlt),
                seconds("limit", limit),
                ratio("limit"),
                ratio("dlt"),
                speed(ours),
                peak(ours),
                peak(dlt),
                peak(limit),
                result.target_verdict(),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    rendered = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in lines
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return f"\n{route}\n" + "\n".join(rendered)


def write_json(
    path: Path,
    *,
    config: dict[str, Any],
    machine: dict[str, Any],
    repeats: dict[str, list[list[PhaseResult]]],
) -> None:
    """The summary per route (see :func:`summarize`) and every repetition behind it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "config": config,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            **machine,
        },
        "versions": _versions(),
        "targets": {
            phase: {"against": a, "max_ratio": r, "max_ours_peak_mb": m}
            for phase, (a, r, m) in TARGETS.items()
        },
        "routes": {name: [p.as_dict() for p in summarize(runs)] for name, runs in repeats.items()},
        "repetitions": {
            name: [[p.as_dict() for p in run] for run in runs] for name, runs in repeats.items()
        },
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("sync-pipelines", "dlt", "duckdb", "pyarrow", "sqlalchemy", "psycopg"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
