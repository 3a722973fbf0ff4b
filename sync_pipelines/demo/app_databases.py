"""The demo's source data: one small SQLite app database per end customer, with activity.

Each database has an ``events`` table (``id``, ``user_id``, ``event_name``, ``amount``,
``occurred_at``, ``updated_at``). :func:`simulate_activity` appends new events and edits a few
old ones (bumping ``updated_at``), so every incremental run has a little work to do.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

END_CUSTOMERS = ("acme", "globex", "initech", "umbrella")
EVENT_NAMES = ("signup", "login", "view_item", "add_to_cart", "checkout", "refund")
INITIAL_EVENTS = 250
ACTIVITY_EVERY = dt.timedelta(seconds=60)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    amount NUMERIC,
    occurred_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS events_updated_at ON events (updated_at, id);
CREATE TABLE IF NOT EXISTS demo_activity (last_activity_at TIMESTAMP NOT NULL);
"""


def database_path(directory: Path, end_customer_id: str) -> Path:
    """The app database of one end customer."""
    return directory / f"app_{end_customer_id}.sqlite"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _stamp(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def _event(rng: random.Random, when: dt.datetime) -> tuple:
    name = rng.choice(EVENT_NAMES)
    amount = round(rng.uniform(5, 500), 2) if name in ("checkout", "refund") else None
    return (rng.randint(1, 40), name, amount, _stamp(when), _stamp(when))


def create_app_databases(
    directory: Path, end_customers: Sequence[str] = END_CUSTOMERS, *, seed: int = 7
) -> list[Path]:
    """Create each end customer's app database with two weeks of events (once; idempotent)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, customer in enumerate(end_customers):
        path = database_path(directory, customer)
        paths.append(path)
        with sqlite3.connect(path) as db:
            db.executescript(_SCHEMA)
            if db.execute("SELECT count(*) FROM events").fetchone()[0]:
                continue
            rng = random.Random(seed + index)
            now = _now()
            rows = sorted(
                (
                    _event(rng, now - dt.timedelta(minutes=rng.randint(1, 14 * 24 * 60)))
                    for _ in range(INITIAL_EVENTS + 50 * index)
                ),
                key=lambda row: row[3],
            )
            db.executemany(
                "INSERT INTO events (user_id, event_name, amount, occurred_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("INSERT INTO demo_activity VALUES (?)", (_stamp(now),))
    return paths


def simulate_activity(
    directory: Path,
    end_customers: Sequence[str] = END_CUSTOMERS,
    *,
    every: dt.timedelta = ACTIVITY_EVERY,
) -> int:
    """New events and a few edits in each app database, at most once per ``every``.

    Returns:
        How many rows were inserted or updated.
    """
    changed = 0
    rng = random.Random()
    now = _now()
    for customer in end_customers:
        path = database_path(directory, customer)
        if not path.exists():
            continue
        with sqlite3.connect(path, timeout=30) as db:
            last = db.execute("SELECT max(last_activity_at) FROM demo_activity").fetchone()[0]
            if last and now - dt.datetime.fromisoformat(last) < every:
                continue
            new = [_event(rng, now) for _ in range(rng.randint(3, 8))]
            db.executemany(
                "INSERT INTO events (user_id, event_name, amount, occurred_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                new,
            )
            edited = db.execute(
                "UPDATE events SET amount = round(coalesce(amount, 0) + 1, 2), updated_at = ? "
                "WHERE id IN (SELECT id FROM events ORDER BY random() LIMIT ?)",
                (_stamp(now), rng.randint(1, 3)),
            ).rowcount
            db.execute("DELETE FROM demo_activity")
            db.execute("INSERT INTO demo_activity VALUES (?)", (_stamp(now),))
            changed += len(new) + edited
    return changed
