"""The routes: where the source lives and where each tool writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.databases import (
    SCHEMA_PREFIX,
    DuckDbDestination,
    MySqlSource,
    PostgresDestination,
    PostgresSource,
    SqliteSource,
)

ROUTE_NAMES = ("sqlite-duckdb", "postgres-postgres", "mysql-postgres", "postgres-duckdb")
OURS_SCHEMA = f"{SCHEMA_PREFIX}_ours"
DLT_SCHEMA = f"{SCHEMA_PREFIX}_dlt"
LIMIT_SCHEMA = f"{SCHEMA_PREFIX}_limit"

Source = SqliteSource | PostgresSource | MySqlSource
Destination = DuckDbDestination | PostgresDestination


@dataclass(frozen=True)
class Route:
    """A source and one destination per tool; ``work_dir`` holds this route's local state."""

    name: str
    work_dir: Path
    source: Source
    ours: Destination
    dlt: Destination
    limit: Destination

    def destination(self, tool: str) -> Destination:
        return {"ours": self.ours, "dlt": self.dlt, "limit": self.limit}[tool]


def _destinations(kind: str, work_dir: Path) -> dict[str, Destination]:
    schemas = {"ours": OURS_SCHEMA, "dlt": DLT_SCHEMA, "limit": LIMIT_SCHEMA}
    if kind == "duckdb":
        return {
            tool: DuckDbDestination(path=work_dir / f"{tool}.duckdb", schema=schema)
            for tool, schema in schemas.items()
        }
    return {tool: PostgresDestination(schema=schema) for tool, schema in schemas.items()}


def route(name: str, data_dir: Path, *, json_payload: bool = False) -> Route:
    """The route called ``name``, keeping its files under ``data_dir``.

    ``json_payload`` declares the source's payload column JSON (SQLite, MySQL) or jsonb
    (PostgreSQL) instead of text.
    """
    if name not in ROUTE_NAMES:
        raise ValueError(f"unknown route {name!r}; choose from {', '.join(ROUTE_NAMES)}")
    work_dir = data_dir / name
    source_kind, destination_kind = name.split("-")
    source: Source
    if source_kind == "sqlite":
        source = SqliteSource(
            path=work_dir / "source.sqlite", cache_dir=data_dir, json_payload=json_payload
        )
    elif source_kind == "mysql":
        source = MySqlSource(json_payload=json_payload)
    else:
        source = PostgresSource(json_payload=json_payload)
    return Route(
        name=name, work_dir=work_dir, source=source, **_destinations(destination_kind, work_dir)
    )
