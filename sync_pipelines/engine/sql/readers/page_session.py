"""The page session: the one ADBC connection a read pass reads all its pages on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa


class PageSession:
    """The ADBC connection of one read pass: every page of a backfill, or of the NULL-cursor
    pass, is read on it, and it is closed when the pass ends, however it ends.

    A connection per page cost a connect and a backend start each (tens of milliseconds). The
    connection is in autocommit mode and each PostgreSQL page its own read-only transaction, so
    no transaction (nor SQLite read lock) is held from one page to the next, as with a
    connection per page.
    A page that fails or is left unfinished closes the connection (the next page opens another):
    nothing it began outlives it.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._connection: Any = None

    def __enter__(self) -> PageSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self, connect: Callable[[sa.Engine], Any]) -> Any:
        """The open ADBC connection, connected by ``connect`` at the first page."""
        if self._connection is None:
            self._connection = connect(self.engine)
        return self._connection

    @contextlib.contextmanager
    def page(self, connection: Any) -> Iterator[Any]:
        """A cursor for one page; the connection is closed unless the page ends normally."""
        finished = False
        try:
            with connection.cursor() as cursor:
                yield cursor
            finished = True
        finally:
            if not finished:
                self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
