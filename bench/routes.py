"""The two routes: where the source lives and where each tool writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.databases import (
    DuckDbDestination,
    PostgresDestination,
    PostgresSource,
    SqliteSource,
)

ROUTE_NAMES = ("sqlite-duckdb", "postgres-postgres")
OURS_SCHEMA = "bench_ours"
DLT_SCHEMA = "bench_dlt"


@dataclass(frozen=True)
class Route:
    """A source and one destination per tool; ``work_dir`` holds this route's local state."""

    name: str
    work_dir: Path
    source: SqliteSource | PostgresSource
    ours: DuckDbDestination | PostgresDestination
    dlt: DuckDbDestination | PostgresDestination

    def destination(self, tool: str) -> DuckDbDestination | PostgresDestination:
        return {"ours": self.ours, "dlt": self.dlt}[tool]


def route(name: str, data_dir: Path, *, json_payload: bool = False) -> Route:
    """The route called ``name``, keeping its files under ``data_dir``.

    ``json_payload`` declares the source's payload column JSON (SQLite) or jsonb (PostgreSQL)
    instead of text.
    """
    work_dir = data_dir / name
    if name == "sqlite-duckdb":
        return Route(
            name=name,
            work_dir=work_dir,
            source=SqliteSource(
                path=work_dir / "source.sqlite", cache_dir=data_dir, json_payload=json_payload
            ),
            ours=DuckDbDestination(path=work_dir / "ours.duckdb", schema=OURS_SCHEMA),
            dlt=DuckDbDestination(path=work_dir / "dlt.duckdb", schema=DLT_SCHEMA),
        )
    if name == "postgres-postgres":
        return Route(
            name=name,
            work_dir=work_dir,
            source=PostgresSource(json_payload=json_payload),
            ours=PostgresDestination(schema=OURS_SCHEMA),
            dlt=PostgresDestination(schema=DLT_SCHEMA),
        )
    raise ValueError(f"unknown route {name!r}; choose from {', '.join(ROUTE_NAMES)}")
