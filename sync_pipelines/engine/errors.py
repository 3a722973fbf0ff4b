"""The engine's errors: each message names what failed (sync, table, column), never a secret."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of everything the engine raises on purpose."""


class ConnectionSpecError(EngineError):
    """A connection spec cannot be turned into a database URL."""


class MissingExtraError(ConnectionSpecError):
    """The SQLAlchemy dialect of a connection type is an optional extra that is not installed."""


class DatabaseUnreachableError(EngineError):
    """A source or destination database cannot be connected to."""


class SourceSchemaError(EngineError):
    """The source table, a column or the custom_join query does not fit the sync."""


class CursorTypeError(SourceSchemaError):
    """The cursor column has a type that cannot order rows (boolean, JSON, ...)."""


class NullCursorError(SourceSchemaError):
    """Source rows have a NULL cursor and the sync's ``null_cursor`` policy refuses them."""


class MappingError(EngineError):
    """A source value cannot be converted to its object field's type."""


class DestinationTypeConflictError(EngineError):
    """An existing destination column has a type incompatible with its object field."""


class SyncRunError(EngineError):
    """A sync run failed; the run is marked failed with this message.

    Attributes:
        sync_id: the sync that ran.
        run_id: the failed run (``None`` when no run could be started).
    """

    def __init__(self, message: str, *, sync_id: int, run_id: int | None) -> None:
        super().__init__(message)
        self.sync_id = sync_id
        self.run_id = run_id
