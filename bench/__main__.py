"""``python -m bench``: our engine against dlt and the databases' own limit, same workload.

Per route: initial load, then updates + inserts applied to the source and an incremental run,
then a run with nothing new. Each tool runs each phase in its own process (time and peak RSS
per phase and tool), and after each phase every destination must hold exactly the source rows,
or the benchmark exits non-zero. ``--rows 10000000`` is the scale mode: the rows stream from
DuckDB into Parquet and from there into the sources, so generation stays bounded in memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from bench.measure import PhaseFailed, measure
from bench.report import PhaseResult, summarize, table, write_json
from bench.routes import ROUTE_NAMES, route
from bench.source_data import (
    ROWS_PER_CURSOR_VALUE,
    ChangeSet,
    InitialRows,
    cached_initial_rows,
    change_set,
)
from bench.tools import END_CUSTOMER, END_CUSTOMER_FIELD, RESETS, TOOL_NAMES, WORKERS_ENV
from bench.verify import compare

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
RESULTS_DIR = BENCH_DIR / "results"
PHASES = ("initial", "incremental", "no-op")

_started = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _started:7.1f}s] {message}", flush=True)


def _names(value: str, allowed: tuple[str, ...]) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="source rows (1,000,000)")
    parser.add_argument(
        "--changes",
        type=int,
        default=None,
        help="updates and, as many, inserts before the incremental run "
        "(10,000, or 1%% of --rows when that is smaller)",
    )
    parser.add_argument(
        "--routes",
        type=lambda v: _names(v, ROUTE_NAMES),
        default=list(ROUTE_NAMES),
        help=f"comma-separated: {','.join(ROUTE_NAMES)}",
    )
    parser.add_argument(
        "--tools",
        type=lambda v: _names(v, TOOL_NAMES),
        default=list(TOOL_NAMES),
        help=f"comma-separated: {','.join(TOOL_NAMES)}",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=50_000,
        help="rows per batch for both tools (ours: batch_size; dlt: chunk_size; 50,000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ours: threads loading the initial backfill's key ranges (1)",
    )
    parser.add_argument(
        "--json-payload",
        action="store_true",
        help="declare the source's payload column JSON (SQLite) / jsonb (PostgreSQL), not text",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each route this many times; report the (lower) median time and the highest peak",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help="where generated data, local databases and logs go (bench/.data)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write a cProfile dump per phase and tool beside its log (slows the runs)",
    )
    args = parser.parse_args(argv)
    if args.changes is None:
        args.changes = max(min(10_000, args.rows // 100), 1)
    return args


def run_route(
    name: str, args: argparse.Namespace, initial: InitialRows, changes: ChangeSet
) -> list[PhaseResult]:
    """Prepare the route, then each phase: every tool in its own process, then a check."""
    current = route(name, args.data_dir, json_payload=args.json_payload)
    current.work_dir.mkdir(parents=True, exist_ok=True)
    say(f"{name}: preparing the source ({args.rows:,} rows) and empty destinations")
    current.source.prepare(initial)
    for tool in args.tools:
        RESETS[tool](current)

    results: list[PhaseResult] = []
    broken: set[str] = set()
    for phase in PHASES:
        moved = {"initial": args.rows, "incremental": changes.rows.num_rows, "no-op": 0}[phase]
        if phase == "incremental":
            say(f"{name}: applying {changes.updates:,} updates + {changes.inserts:,} inserts")
            current.source.apply(changes.rows)
        result = PhaseResult(phase=phase, rows=moved)
        source_rows = current.source.verification_rows()
        for tool in args.tools:
            if tool in broken:
                result.errors[tool] = "skipped after an earlier failure"
                continue
            say(f"{name}: {phase} with {tool} ...")
            try:
                measured = measure(
                    tool=tool,
                    phase=phase,
                    route=name,
                    data_dir=args.data_dir,
                    batch_size=args.batch_size,
                    log_path=current.work_dir / "logs" / f"{phase}-{tool}.log",
                    profile=args.profile,
                )
            except PhaseFailed as error:
                say(f"{name}: {phase} with {tool} FAILED\n{error}")
                result.errors[tool] = str(error)
                broken.add(tool)
                continue
            result.measurements[tool] = measured
            where = (END_CUSTOMER_FIELD, END_CUSTOMER) if tool == "ours" else None
            try:
                check = compare(
                    source_rows, current.destination(tool).verification_rows(where=where)
                )
            except Exception as error:  # noqa: BLE001 - a destination we cannot read fails the check
                say(f"{name}: {phase} with {tool}: cannot read the destination: {error}")
                result.errors[tool] = f"verification: {error}"
                continue
            result.checks[tool] = check
            say(
                f"{name}: {phase} with {tool}: {measured.seconds:.2f} s, "
                f"peak {measured.peak_rss_mb:.0f} MB, reported rows {measured.rows_reported}; "
                f"destination {check.describe()}"
            )
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ[WORKERS_ENV] = str(args.workers)  # each phase's process inherits it
    say(
        f"workload: events, {args.rows:,} rows, {ROWS_PER_CURSOR_VALUE} rows per updated_at "
        f"value, 10 customers as data, payload {'JSON' if args.json_payload else 'text'}; "
        f"then {args.changes:,} updates + {args.changes:,} inserts; "
        f"batch size {args.batch_size:,}; tools {', '.join(args.tools)}; "
        f"ours with {args.workers} worker{'s' if args.workers > 1 else ''}"
    )
    say(
        "fairness: each tool syncs the whole table as ONE sync (ours: one end customer "
        f"{END_CUSTOMER!r}; the 10 customers are only a column), each phase in a fresh process; "
        "limit: the databases' own bulk paths (bench/limit.py)"
    )
    initial = cached_initial_rows(args.rows, args.data_dir)
    changes = change_set(args.rows, args.changes)
    say("workload ready")

    load_before = os.getloadavg()[0]
    if load_before > 1:
        say(f"note: load average {load_before:.1f} before the start; other work skews timings")
    repeats: dict[str, list[list[PhaseResult]]] = {}
    for name in args.routes:
        runs = repeats.setdefault(name, [])
        for repetition in range(1, args.repeat + 1):
            if args.repeat > 1:
                say(f"{name}: repetition {repetition} of {args.repeat}")
            runs.append(run_route(name, args, initial, changes))
        print(table(name, summarize(runs)), flush=True)

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    config = {
        "rows": args.rows,
        "changes": args.changes,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "routes": args.routes,
        "tools": args.tools,
        "repeat": args.repeat,
        "json_payload": args.json_payload,
        "choice": "one sync of the whole table per tool; 10 customers are a column",
    }
    machine = {"load_average_before": load_before, "load_average_after": os.getloadavg()[0]}
    path = RESULTS_DIR / f"bench-{stamp}-{args.rows}.json"
    write_json(path, config=config, machine=machine, repeats=repeats)
    print(f"\nresults written to {path}")

    problems = [
        f"{name} {result.phase} {tool}: {detail}"
        for name, runs in repeats.items()
        for results in runs
        for result in results
        for tool, detail in [
            *result.errors.items(),
            *((t, c.describe()) for t, c in result.checks.items() if not c.ok),
        ]
    ]
    if problems:
        print("\nFAILED:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print("all destinations hold exactly the source rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
