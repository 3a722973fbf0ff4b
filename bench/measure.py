"""Run one tool for one phase in a fresh Python process and measure it.

The parent starts ``python -m bench.measure JOB`` and reads one JSON line back. Peak RSS is
the child's own high-water mark (``VmHWM`` in ``/proc/self/status``): a fresh process per phase
and per tool, so imports, the tool and the sync are counted and nothing else is. (The wait4
``ru_maxrss`` of a child is not used: on Linux it can carry the parent's high-water mark across
the fork/exec.)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_MARKER = "BENCH_RESULT "


@dataclass
class Measurement:
    """One tool, one phase: the timed sync, the whole process, peak memory, what the tool said."""

    tool: str
    phase: str
    seconds: float
    process_seconds: float
    peak_rss_mb: float
    rows_reported: int | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PhaseFailed(RuntimeError):
    """The tool's process failed; the message carries the tail of its log."""


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    *,
    tool: str,
    phase: str,
    route: str,
    data_dir: Path,
    batch_size: int,
    log_path: Path,
    profile: bool = False,
) -> Measurement:
    """Run ``tool`` on ``route`` in a child process; its stderr goes to ``log_path``.

    With ``profile``, the child also writes a cProfile dump beside the log (``.prof``).
    """
    job = {"tool": tool, "route": route, "data_dir": str(data_dir), "batch_size": batch_size}
    if profile:
        job["profile"] = str(log_path.with_suffix(".prof"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log_path.open("w") as log:
        child = subprocess.run(
            [sys.executable, "-m", "bench.measure", json.dumps(job)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    process_seconds = time.perf_counter() - started
    results = [
        json.loads(line[len(_MARKER) :])
        for line in child.stdout.splitlines()
        if line.startswith(_MARKER)
    ]
    if child.returncode != 0 or not results:
        tail = "\n".join(log_path.read_text().splitlines()[-25:])
        raise PhaseFailed(
            f"{tool} {phase} on {route} failed (exit {child.returncode}); log {log_path}:\n{tail}"
        )
    result = results[-1]
    return Measurement(
        tool=tool,
        phase=phase,
        seconds=result["seconds"],
        process_seconds=process_seconds,
        peak_rss_mb=result["peak_rss_mb"],
        rows_reported=result["rows"],
        details=result["details"],
    )


def _child(job: dict[str, Any]) -> None:
    import logging

    from bench.routes import route
    from bench.tools import RUNNERS

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    runner = RUNNERS[job["tool"]]
    current = route(job["route"], Path(job["data_dir"]))
    if job.get("profile"):
        import cProfile

        with cProfile.Profile() as profile:
            run = runner(current, batch_size=job["batch_size"])
        profile.dump_stats(job["profile"])
    else:
        run = runner(current, batch_size=job["batch_size"])
    result = {
        "seconds": run.seconds,
        "rows": run.rows,
        "details": run.details,
        "peak_rss_mb": _peak_rss_mb(),
    }
    print(_MARKER + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
