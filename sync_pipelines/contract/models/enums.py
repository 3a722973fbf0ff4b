"""The wire models' enumerations (connection types, sync modes, field types, statuses)."""

from __future__ import annotations

from sync_pipelines.contract.models.primitives import _LowerCaseEnum


class ConnectionType(_LowerCaseEnum):
    """Databases a source or destination can be."""

    POSTGRES = "postgres"
    MYSQL = "mysql"
    SQLITE = "sqlite"
    DUCKDB = "duckdb"
    SNOWFLAKE = "snowflake"
    BIGQUERY = "bigquery"
    REDSHIFT = "redshift"


class SyncMode(_LowerCaseEnum):
    """How a sync writes into its object."""

    FULL_OVERWRITE = "full_overwrite"
    INCREMENTAL_APPEND = "incremental_append"
    INCREMENTAL_UPDATE = "incremental_update"


class NullCursor(_LowerCaseEnum):
    """What an incremental read does with source rows whose cursor column is NULL."""

    INCLUDE = "include"
    """Read them every run, in their own pass ordered by the primary key, and upsert them."""
    FAIL = "fail"
    """Fail the run, naming the sync, table, column and how many rows."""
    SKIP = "skip"
    """Leave them out (the run log says how many)."""


class DeleteMode(_LowerCaseEnum):
    """What a run does with destination rows whose key is no longer in the source."""

    IGNORE = "ignore"
    """Keep them (the default)."""
    SOFT = "soft"
    """Keep them and set their ``_deleted_at`` (cleared when the key comes back)."""
    HARD = "hard"
    """Delete them."""


class TargetType(_LowerCaseEnum):
    """Fabra's object target types; one shared table keyed by end customer is supported."""

    SINGLE_EXISTING = "single_existing"


class FieldType(_LowerCaseEnum):
    """Object field types (Fabra's, lower-cased; ``timestamp`` is a time-zone-aware timestamp).

    ``number`` is an exact decimal, ``float`` a double; ``binary`` holds bytes (bytea, BLOB).
    """

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    FLOAT = "float"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    DATETIME_TZ = "datetime_tz"
    DATETIME_NTZ = "datetime_ntz"
    DATE = "date"
    TIME_TZ = "time_tz"
    TIME_NTZ = "time_ntz"
    JSON = "json"
    ARRAY = "array"
    BINARY = "binary"


ORDERABLE_FIELD_TYPES = frozenset(
    {
        FieldType.INTEGER,
        FieldType.NUMBER,
        FieldType.FLOAT,
        FieldType.TIMESTAMP,
        FieldType.DATETIME_TZ,
        FieldType.DATETIME_NTZ,
        FieldType.DATE,
    }
)


class SyncStatus(_LowerCaseEnum):
    """Whether a sync runs (``active``) or is paused."""

    ACTIVE = "active"
    PAUSED = "paused"


class RunStatus(_LowerCaseEnum):
    """Lifecycle of a sync run."""

    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class HealthStatus(_LowerCaseEnum):
    """Sequin's health levels."""

    HEALTHY = "healthy"
    OK = "ok"
    WARN = "warn"
    ERROR = "error"
