"""Does a destination hold exactly the source rows? Counted, checksummed and diffed in DuckDB."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class Fingerprint:
    """Row count and an order-independent checksum over (id, updated_at, amount)."""

    rows: int
    checksum: int


@dataclass(frozen=True)
class Comparison:
    """A destination against the source: ``ok`` only when both fingerprints match exactly."""

    source: Fingerprint
    destination: Fingerprint
    missing: int
    unexpected: int
    duplicate_ids: int

    @property
    def ok(self) -> bool:
        return (
            self.source == self.destination
            and self.missing == 0
            and self.unexpected == 0
            and self.duplicate_ids == 0
        )

    def describe(self) -> str:
        if self.ok:
            return f"ok ({self.destination.rows:,} rows, checksum {self.destination.checksum})"
        return (
            f"MISMATCH: source {self.source.rows:,} rows / destination "
            f"{self.destination.rows:,} rows; {self.missing:,} source rows missing or stale, "
            f"{self.unexpected:,} destination rows not in the source, "
            f"{self.duplicate_ids:,} duplicated ids"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


_FINGERPRINT = "SELECT count(*), coalesce(sum(hash(id, cents, updated_us)::HUGEINT), 0) FROM {}"


def compare(source: pa.Table, destination: pa.Table) -> Comparison:
    """Compare two ``(id, cents, updated_us)`` tables as multisets."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("src", source)
    con.register("dst", destination)

    def fingerprint(name: str) -> Fingerprint:
        rows, checksum = con.sql(_FINGERPRINT.format(name)).fetchone()
        return Fingerprint(rows=int(rows), checksum=int(checksum))

    def count(query: str) -> int:
        return int(con.sql(query).fetchone()[0])

    return Comparison(
        source=fingerprint("src"),
        destination=fingerprint("dst"),
        missing=count("SELECT count(*) FROM (FROM src EXCEPT ALL FROM dst)"),
        unexpected=count("SELECT count(*) FROM (FROM dst EXCEPT ALL FROM src)"),
        duplicate_ids=count("SELECT count(*) - count(DISTINCT id) FROM dst"),
    )
