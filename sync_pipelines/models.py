"""Pydantic models of the sync API's resources: create, update and read shapes.

The create bodies accept the seed API's field names (``000_*.txt``), Fabra's earlier and later
names as aliases (``customer_id_column``, ``source_cursor_field``, ``source_primary_key``) and
Sequin's sync fields (``004_*.txt``). Secrets are :class:`pydantic.SecretStr` on the way in and
``"***"`` on the way out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    Tag,
    WithJsonSchema,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sync_pipelines.frequency import (
    FrequencyUnits,
    interval_seconds,
    parse_shorthand,
    to_shorthand,
)

if TYPE_CHECKING:
    from sqlglot import exp

MASK = "***"
REVEAL_SECRETS = {"reveal_secrets": True}


def _serialize_secret(value: SecretStr, info: SerializationInfo) -> str:
    if info.context and info.context.get("reveal_secrets"):
        return value.get_secret_value()
    return MASK


# Limits on what one request may hold: every check is linear, and these bound its size.
INT64_MAX = 2**63 - 1
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the store
MAX_OBJECT_FIELDS = 1600  # PostgreSQL's limit of columns in a table
MAX_FIELD_MAPPINGS = 1600
MAX_COLLECTIONS = 100
MAX_JSON_BYTES = 65_536  # metadata, provider_config, a cursor position (as compact JSON)
MAX_CUSTOM_JOIN_CHARS = 10_000  # parsed (sqlglot) while the body is validated: bounded time
MAX_SECRET_CHARS = 65_536
MAX_TEXT_CHARS = 4096
MAX_CREDENTIAL_PROPERTIES = 50
MAX_RATE_LIMIT_INTERVAL = 31 * 86_400.0  # a month of seconds (a monthly quota)
MAX_AGE_DAYS = 36_525  # a hundred years
MAX_LOOKBACK = 2**31 - 1  # a 32-bit column: 68 years of seconds


def _bounded_secret(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) > MAX_SECRET_CHARS:
        raise ValueError(f"must be at most {MAX_SECRET_CHARS} characters")
    return value


Secret = Annotated[
    SecretStr,
    AfterValidator(_bounded_secret),
    PlainSerializer(_serialize_secret, when_used="json"),
]
"""A write-only value: ``"***"`` when dumped to JSON unless the context is ``REVEAL_SECRETS``."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A resource id: a positive 32-bit integer."""
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]


def invalid(field: str, message: str) -> PydanticCustomError:
    """A rule across fields broken by ``field``: the 422 names that field."""
    return PydanticCustomError("invalid_field", "{message}", {"field": field, "message": message})


def first_duplicate(values: Iterable[str]) -> str | None:
    """The first value seen twice (linear), or ``None``."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def bounded_json(value: Any) -> Any:
    """A JSON value of at most :data:`MAX_JSON_BYTES`, without NaN or Infinity."""
    if value is None:
        return value
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValueError("must not contain NaN or Infinity") from None
    if len(encoded.encode()) > MAX_JSON_BYTES:
        raise ValueError(f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(bounded_json)]
"""A free-form JSON object (metadata, provider_config), bounded in size."""

__all__ = [
    "MASK",
    "MUTABLE_SYNC_FIELDS",
    "NO_NUL",
    "AnySyncCreate",
    "BackfillState",
    "Credential",
    "CredentialCreate",
    "CredentialInput",
    "CredentialUpdate",
    "Permit",
    "ProviderSyncCreate",
    "SealedCredential",
    "REVEAL_SECRETS",
    "Secret",
    "check_connection_url",
    "check_read_only_select",
    "BigQueryConfig",
    "Connection",
    "ConnectionInput",
    "ConnectionType",
    "CursorPosition",
    "Destination",
    "DestinationCreate",
    "DestinationUpdate",
    "FieldMapping",
    "FileAccess",
    "FieldType",
    "FrequencyUnits",
    "Health",
    "HealthStatus",
    "Id",
    "JsonObject",
    "MySqlConfig",
    "NullCursor",
    "DeleteMode",
    "ObjectCreate",
    "ObjectField",
    "ObjectUpdate",
    "PostgresConfig",
    "RateLimit",
    "RedshiftConfig",
    "RunLease",
    "RunStats",
    "RunStatus",
    "SealedConnection",
    "SnowflakeConfig",
    "Source",
    "SourceCreate",
    "SourceUpdate",
    "Sync",
    "SyncCreate",
    "SyncMode",
    "SyncObject",
    "SyncRun",
    "SyncStatus",
    "SyncUpdate",
    "TargetType",
]


NO_NUL = r"^[^\x00]*$"
"""A pattern for text that reaches the store: PostgreSQL text cannot hold NUL characters."""


class _Body(BaseModel):
    """A request body: unknown fields are an error, aliases and names are both accepted; text
    holds no NUL character."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, list) else (value,)
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain NUL characters")
        return value


class _Resource(BaseModel):
    """A response shape."""

    model_config = ConfigDict(from_attributes=True)


class _LowerCaseEnum(StrEnum):
    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            for member in cls:
                if member.value == value.strip().lower():
                    return member
        return None


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


Name = Annotated[str, Field(min_length=1, max_length=255)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


# --- connections ---------------------------------------------------------------------------


class PostgresConfig(_Body):
    """Fabra's typed PostgreSQL connection."""

    username: Name
    password: Secret | None = None
    database_name: Name
    host: Name
    port: int = Field(default=5432, ge=1, le=65535)


class MySqlConfig(_Body):
    """A MySQL or MariaDB connection."""

    username: Name
    password: Secret | None = None
    database_name: Name
    host: Name
    port: int = Field(default=3306, ge=1, le=65535)


class RedshiftConfig(_Body):
    """Fabra's typed Redshift connection (``endpoint`` is accepted for ``host``)."""

    username: Name
    password: Secret
    database_name: Name
    host: Name = Field(validation_alias=AliasChoices("host", "endpoint"))
    port: int = Field(default=5439, ge=1, le=65535)


class SnowflakeConfig(_Body):
    """Fabra's typed Snowflake connection."""

    username: Name
    password: Secret
    warehouse_name: Name
    database_name: Name
    host: Name
    role: Name


class BigQueryConfig(_Body):
    """Fabra's typed BigQuery connection: the service account JSON and the dataset location."""

    credentials: Secret
    location: Name
    project_id: str | None = None


_TYPED_CONFIGS: dict[ConnectionType, str] = {
    ConnectionType.POSTGRES: "postgres_config",
    ConnectionType.MYSQL: "mysql_config",
    ConnectionType.REDSHIFT: "redshift_config",
    ConnectionType.SNOWFLAKE: "snowflake_config",
    ConnectionType.BIGQUERY: "bigquery_config",
}


class ConnectionInput(_Body):
    """A database connection: ``connection_type`` plus a typed config or a SQLAlchemy ``url``."""

    connection_type: ConnectionType
    url: Secret | None = None
    postgres_config: PostgresConfig | None = None
    mysql_config: MySqlConfig | None = None
    redshift_config: RedshiftConfig | None = None
    snowflake_config: SnowflakeConfig | None = None
    bigquery_config: BigQueryConfig | None = None

    @field_validator("connection_type", mode="before")
    @classmethod
    def _known_connection_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"mongodb", "webhook"}:
            raise ValueError(
                f"connection_type {value!r} is not supported; use one of "
                + ", ".join(t.value for t in ConnectionType)
            )
        return value

    @field_validator("url")
    @classmethod
    def _parsable_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_connection_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> ConnectionInput:
        given = [name for name in _TYPED_CONFIGS.values() if getattr(self, name) is not None]
        expected = _TYPED_CONFIGS.get(self.connection_type)
        wrong = [name for name in given if name != expected]
        if wrong:
            raise invalid(
                wrong[0],
                f"{wrong[0]} does not fit connection_type {self.connection_type.value!r}"
                + (f"; use {expected}" if expected else "; use url"),
            )
        if self.url is not None and given:
            raise invalid("url", f"give either url or {given[0]}, not both")
        if self.url is None and not given:
            options = f"url or {expected}" if expected else "url"
            raise invalid("url", f"connection_type {self.connection_type.value!r} needs {options}")
        return self

    def connection_spec(self) -> dict[str, Any]:
        """The connection as plain JSON with secrets revealed (only for sealing at rest)."""
        fields = {"connection_type", "url", *_TYPED_CONFIGS.values()}
        return self.model_dump(
            mode="json", include=fields, exclude_none=True, context=REVEAL_SECRETS
        )


class Connection(_Resource):
    """A connection as the API shows it: secrets masked as ``"***"``."""

    id: int
    connection_type: ConnectionType
    url: str | None = None
    postgres_config: dict[str, Any] | None = None
    mysql_config: dict[str, Any] | None = None
    redshift_config: dict[str, Any] | None = None
    snowflake_config: dict[str, Any] | None = None
    bigquery_config: dict[str, Any] | None = None


class SealedConnection(_Resource):
    """A connection for a runner: its spec encrypted with the shared secret key."""

    connection_type: ConnectionType
    sealed: str


# --- sources and destinations --------------------------------------------------------------


def _coerce_customer_id(value: Any) -> Any:
    """Fabra 0.1.0 sent ``end_customer_id`` as an integer; it is a string now."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


CustomerId = Annotated[str, Field(min_length=1, max_length=255)]


class SourceCreate(ConnectionInput):
    """``POST /source``: one end customer's database."""

    display_name: Name
    end_customer_id: CustomerId

    _customer_id = field_validator("end_customer_id", mode="before")(_coerce_customer_id)


class SourceUpdate(_Body):
    """``PATCH /source/{id}``: rename, or replace the connection."""

    display_name: Name | None = None
    connection: ConnectionInput | None = None


class Source(_Resource):
    """A source as the API shows it."""

    id: int
    organization_id: int
    display_name: str
    end_customer_id: str
    connection: Connection
    created_at: dt.datetime
    updated_at: dt.datetime


class DestinationCreate(ConnectionInput):
    """``POST /destination``: the organization's warehouse or database."""

    display_name: Name


class DestinationUpdate(_Body):
    """``PATCH /destination/{id}``."""

    display_name: Name | None = None
    connection: ConnectionInput | None = None


class Destination(_Resource):
    """A destination as the API shows it."""

    id: int
    organization_id: int
    display_name: str
    connection: Connection
    created_at: dt.datetime
    updated_at: dt.datetime


# --- objects -------------------------------------------------------------------------------


class ObjectField(_Body):
    """One column of an object. ``omit``: exists but is not synced; ``optional``: nullable."""

    name: Name
    type: FieldType
    optional: bool = False
    omit: bool = False
    display_name: Annotated[str, Field(max_length=255)] | None = None
    description: Text | None = None


class FieldMapping(_Body):
    """Maps a source column onto an object field."""

    source_field_name: Name
    destination_field_name: Name


_MAX_INTERVAL_SECONDS = 366 * 86400


class _Schedule(_Body):
    frequency: int | None = Field(default=None, gt=0, le=_MAX_INTERVAL_SECONDS // 60)
    frequency_units: FrequencyUnits | None = None

    @model_validator(mode="after")
    def _at_least_a_minute(self) -> _Schedule:
        if (self.frequency is None) != (self.frequency_units is None):
            missing = "frequency_units" if self.frequency_units is None else "frequency"
            raise invalid(
                missing, f"{missing} is required when the other of frequency/units is given"
            )
        if (
            self.frequency is not None
            and interval_seconds(self.frequency, self.frequency_units) > _MAX_INTERVAL_SECONDS
        ):
            raise invalid("frequency", "frequency: the interval must be at most a year")
        return self


class ObjectCreate(_Schedule):
    """``POST /object``: a target table on a destination."""

    display_name: Name
    destination_id: Id
    target_type: TargetType = TargetType.SINGLE_EXISTING
    namespace: Name
    table_name: Name
    end_customer_id_field: Name = Field(
        validation_alias=AliasChoices("end_customer_id_field", "customer_id_column")
    )
    sync_mode: SyncMode | None = None
    cursor_field: Name | None = None
    primary_key: Name | None = None
    recurring: bool | None = None
    object_fields: list[ObjectField] = Field(default_factory=list, max_length=MAX_OBJECT_FIELDS)
    deletes: DeleteMode | None = Field(
        default=None, description="default of its syncs' deletes: ignore, soft or hard"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ObjectCreate:
        fields = {f.name: f for f in self.object_fields}
        duplicate = first_duplicate(f.name for f in self.object_fields)
        if duplicate is not None:
            raise invalid("object_fields", f"object_fields: field {duplicate!r} is defined twice")
        if self.end_customer_id_field in fields:
            raise invalid(
                "end_customer_id_field",
                f"end_customer_id_field {self.end_customer_id_field!r} is set by the sync; "
                "it must not also be an object field",
            )
        if self.sync_mode is None:
            if self.cursor_field is None:
                self.sync_mode = SyncMode.FULL_OVERWRITE
            elif self.primary_key is None:
                self.sync_mode = SyncMode.INCREMENTAL_APPEND
            else:
                self.sync_mode = SyncMode.INCREMENTAL_UPDATE
        for role in ("cursor_field", "primary_key"):
            name = getattr(self, role)
            if name is not None and fields and name not in fields:
                raise invalid(role, f"{role} {name!r} is not one of the object_fields")
        if (
            self.cursor_field
            and fields
            and fields[self.cursor_field].type not in (ORDERABLE_FIELD_TYPES)
        ):
            raise invalid(
                "cursor_field",
                f"cursor_field {self.cursor_field!r} has type "
                f"{fields[self.cursor_field].type.value}, which cannot order a cursor; use a "
                "date, timestamp, integer or number field",
            )
        if self.sync_mode is SyncMode.INCREMENTAL_UPDATE and not self.primary_key:
            raise invalid("primary_key", "primary_key is required for sync_mode incremental_update")
        if self.sync_mode is not SyncMode.FULL_OVERWRITE and not self.cursor_field:
            raise invalid(
                "cursor_field", f"cursor_field is required for sync_mode {self.sync_mode.value}"
            )
        return self


class ObjectUpdate(_Schedule):
    """``PATCH /object/{id}``: fields may be added; keys and table stay."""

    display_name: Name | None = None
    object_fields: list[ObjectField] | None = Field(default=None, max_length=MAX_OBJECT_FIELDS)

    @model_validator(mode="after")
    def _distinct_fields(self) -> ObjectUpdate:
        duplicate = first_duplicate(f.name for f in self.object_fields or ())
        if duplicate is not None:
            raise invalid("object_fields", f"object_fields: field {duplicate!r} is defined twice")
        return self


class SyncObject(_Resource):
    """An object as the API shows it (``customer_id_column`` mirrors Fabra 0.1.0)."""

    id: int
    organization_id: int
    display_name: str
    destination_id: int
    target_type: TargetType
    namespace: str
    table_name: str
    end_customer_id_field: str
    sync_mode: SyncMode
    cursor_field: str | None
    primary_key: str | None
    frequency: int | None
    frequency_units: FrequencyUnits | None
    object_fields: list[ObjectField]
    created_at: dt.datetime
    updated_at: dt.datetime
    deletes: DeleteMode | None = None
    """Default of its syncs' ``deletes`` (``None``: ignore)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def customer_id_column(self) -> str:
        """Fabra 0.1.0's name for :attr:`end_customer_id_field`."""
        return self.end_customer_id_field


# --- syncs ---------------------------------------------------------------------------------


class RateLimit(_Body):
    """Sequin's rate limit: ``allowed_requests`` per ``interval`` seconds."""

    allowed_requests: int = Field(gt=0, le=1_000_000)
    interval: float = Field(
        gt=0, le=MAX_RATE_LIMIT_INTERVAL, allow_inf_nan=False, description="seconds"
    )
    max_concurrent_requests: int | None = Field(default=None, gt=0, le=10_000)


class Health(_Resource):
    """Sequin's health object, derived from the sync's recent runs."""

    status: HealthStatus
    notes: list[str] = Field(default_factory=list)
    time: dt.datetime | None = None


class BackfillState(_Resource):
    """A first load (or full refresh) read in primary-key chunks, as far as it is committed.

    Both values are typed (see :mod:`sync_pipelines.typed_values`).
    """

    watermark: dict[str, Any] | None = None
    """The cursor at the backfill's start (capped by the commit horizon): where incremental
    runs continue once every chunk is committed (``None``: the source had no cursor yet)."""
    last_key: dict[str, Any] | None = None
    """The primary key of the last committed row (``None``: no chunk committed yet)."""


class CursorPosition(_Resource):
    """Where the last committed batch ended: typed (see :mod:`sync_pipelines.typed_values`).

    A provider sync keeps one position per collection in ``collections``; a backfill in progress
    keeps its chunk position in ``backfill`` (``cursor`` is then ``None``).
    """

    cursor: dict[str, Any] | None = None
    primary_key: dict[str, Any] | None = None
    backfill: BackfillState | None = None
    # Documented as objects of objects: generated clients cannot follow the recursion.
    collections: Annotated[
        dict[str, CursorPosition] | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "object"}},
                    {"type": "null"},
                ],
                "description": "collection id -> its CursorPosition",
            }
        ),
    ] = None


# Statement kinds a custom_join must not hold (names in sqlglot.exp; sqlglot is imported only
# when a custom_join is checked, so reading the models stays light).
_FORBIDDEN_SQL = (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Into",
    "TruncateTable",
)


# Functions a custom_join must not call: they read or write the database server's files, reach
# the network, run SQL given as text, load code, change settings or hold the server.
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        # SQLite (fileio, zipfile extensions)
        "load_extension", "readfile", "writefile", "edit", "zipfile", "fts3_tokenizer",
        # PostgreSQL
        "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
        "pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_logdir_ls", "cursor_to_xml",
        "table_to_xml", "table_to_xml_and_xmlschema",
        # MySQL / MariaDB
        "load_file", "sleep", "benchmark", "get_lock", "sys_exec", "sys_eval",
        # DuckDB
        "sniff_csv", "glob", "query", "query_table", "getenv",
    }
)
_FORBIDDEN_FUNCTION_PREFIXES = (
    "pg_read_", "pg_ls_", "pg_stat_file", "pg_file_", "pg_sleep", "pg_advisory", "lo_",
    "dblink", "query_to_xml", "read_", "parquet_", "sqlar_",
)
_FORBIDDEN_FUNCTION_SUFFIXES = ("_scan",)
_FILE_NAME_MARKS = ("/", "\\", ".", ":")


def _forbidden_function(statement: exp.Expression) -> str | None:
    """The first function call of a dangerous kind in ``statement``, if any."""
    from sqlglot import exp

    for call in statement.find_all(exp.Func):
        name = (call.name if isinstance(call, exp.Anonymous) else call.sql_name()).lower()
        if (
            name in _FORBIDDEN_FUNCTIONS
            or name.startswith(_FORBIDDEN_FUNCTION_PREFIXES)
            or name.endswith(_FORBIDDEN_FUNCTION_SUFFIXES)
        ):
            return name
    return None


def _without_trailing_semicolons(text: str) -> str:
    """``text`` up to its last token: trailing ``;`` and comments (``-- ...``) removed."""
    from sqlglot.tokens import Tokenizer, TokenType

    tokens = Tokenizer().tokenize(text)
    while tokens and tokens[-1].token_type is TokenType.SEMICOLON:
        tokens.pop()
    return text[: tokens[-1].end + 1] if tokens else ""


def check_read_only_select(sql: str) -> str:
    """Return ``sql`` without trailing ``;`` and comments if it is exactly one read-only SELECT.

    Raises:
        ValueError: it is empty, several statements, not a SELECT, writes, or calls a function
            that reaches files, the network or the server (``pg_read_file``, ``load_extension``).
    """
    import sqlglot
    from sqlglot import exp

    try:
        text = _without_trailing_semicolons(sql.strip())
        if not text:
            raise ValueError("custom_join is empty")
        statements = [s for s in sqlglot.parse(text) if s is not None]
    except sqlglot.errors.ParseError as error:
        raise ValueError(
            f"custom_join is not valid SQL: {error.errors[0]['description']}"
        ) from None
    except sqlglot.errors.SqlglotError as error:  # e.g. an unterminated quote
        raise ValueError(f"custom_join is not valid SQL: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise ValueError("custom_join nests too deeply") from None
    if len(statements) != 1:
        raise ValueError("custom_join must be a single SELECT statement, not several")
    statement = statements[0]
    if not isinstance(statement, exp.Query) or any(
        statement.find_all(*(getattr(exp, kind) for kind in _FORBIDDEN_SQL))
    ):
        raise ValueError("custom_join must be a read-only SELECT (no DDL or DML)")
    if statement.find(exp.Lock) is not None:
        raise ValueError("custom_join must not lock rows (FOR UPDATE/SHARE)")
    for table in statement.find_all(exp.Table):
        if any(mark in table.name for mark in _FILE_NAME_MARKS):
            # DuckDB reads FROM 'file.csv' (or a URL) as a file
            raise ValueError(f"custom_join must not read files or URLs ({table.name!r})")
    forbidden = _forbidden_function(statement)
    if forbidden is not None:
        raise ValueError(
            f"custom_join must not call {forbidden}(): it reaches files, the network or the "
            "database server itself"
        )
    return text


def check_connection_url(text: str) -> URL:
    """Parse a connection URL the way SQLAlchemy, and so the driver, will.

    Raises:
        ValueError: it is not a SQLAlchemy URL, or its user or password holds an unencoded
            ``@`` (the driver would take the rest of the password for the host).
    """
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ValueError(
            "the url is not a SQLAlchemy URL (expected e.g. postgresql://user@host/db)"
        ) from None
    if "@" in (url.host or "") or "@" in (url.username or ""):
        raise ValueError(
            "the url's user or password holds an unencoded '@' (or its host is malformed); "
            "percent-encode '@' as %40, e.g. postgresql://app:Pa%40ss@host/db"
        )
    return url


class _SyncSchedule(_Schedule):
    sync_frequency: str | None = Field(
        default=None,
        max_length=32,
        description='Sequin shorthand: "continuous" or e.g. "30m", "4h", "1d"',
    )
    continuous: bool | None = None

    @model_validator(mode="after")
    def _apply_shorthand(self) -> _SyncSchedule:
        if self.sync_frequency is None:
            return self
        try:
            parsed = parse_shorthand(self.sync_frequency)
        except ValueError as error:
            raise invalid("sync_frequency", f"sync_frequency: {error}") from None
        if parsed is None:
            self.continuous = True
        else:
            if self.frequency is not None and (self.frequency, self.frequency_units) != parsed:
                raise invalid(
                    "sync_frequency", "sync_frequency contradicts frequency/frequency_units"
                )
            if interval_seconds(*parsed) > _MAX_INTERVAL_SECONDS:
                raise invalid(
                    "sync_frequency", "sync_frequency: the interval must be at most a year"
                )
            self.frequency, self.frequency_units = parsed
            self.continuous = False
        return self


class SyncCreate(_SyncSchedule):
    """``POST /sync``: the seed's fields, Fabra's later aliases and Sequin's fields."""

    display_name: Name
    source_id: Id
    object_id: Id
    destination_id: Id | None = None
    end_customer_id: CustomerId | None = None
    namespace: Name | None = None
    table_name: Name | None = None
    custom_join: str | None = Field(default=None, max_length=MAX_CUSTOM_JOIN_CHARS)
    cursor_field: Name | None = Field(
        default=None, validation_alias=AliasChoices("cursor_field", "source_cursor_field")
    )
    primary_key: Name | None = Field(
        default=None, validation_alias=AliasChoices("primary_key", "source_primary_key")
    )
    field_mappings: list[FieldMapping] = Field(max_length=MAX_FIELD_MAPPINGS)
    sync_mode: SyncMode | None = None
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    lookback: int | None = Field(
        default=None,
        ge=0,
        le=MAX_LOOKBACK,
        description="re-read this many seconds (or cursor units) each run",
    )
    null_cursor: NullCursor = Field(
        default=NullCursor.INCLUDE,
        description="rows whose cursor is NULL: include (read every run), fail or skip",
    )
    deletes: DeleteMode | None = Field(
        default=None,
        description="rows whose key left the source: ignore, soft (_deleted_at) or hard "
        "(default: the object's, else ignore)",
    )
    max_delete_fraction: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="refuse a delete check that would delete more of the rows (default 0.5)",
    )
    delete_check_every: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="check for deletes every N runs (default 1)"
    )
    rate_limit: RateLimit | None = None
    metadata: JsonObject = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=255)
    status: SyncStatus = SyncStatus.ACTIVE

    _customer_id = field_validator("end_customer_id", mode="before")(_coerce_customer_id)

    @field_validator("custom_join")
    @classmethod
    def _read_only(cls, value: str | None) -> str | None:
        if value is not None:
            check_read_only_select(value)
        return value

    @model_validator(mode="after")
    def _source_table(self) -> SyncCreate:
        if self.custom_join and (self.namespace or self.table_name):
            # The seed's own example sends both; the query wins and the table names the stream.
            pass
        elif not self.custom_join and not (self.namespace and self.table_name):
            missing = "table_name" if self.namespace else "namespace"
            raise invalid(missing, f"{missing} is required unless custom_join is given")
        twice = first_duplicate(m.destination_field_name for m in self.field_mappings)
        if twice is not None:
            raise invalid("field_mappings", f"field_mappings: {twice!r} is mapped more than once")
        return self


MUTABLE_SYNC_FIELDS = frozenset(
    {
        "display_name",
        "status",
        "field_mappings",
        "cursor_field",
        "max_age_days",
        "lookback",
        "null_cursor",
        "deletes",
        "max_delete_fraction",
        "delete_check_every",
        "rate_limit",
        "metadata",
        "external_id",
        "collection_ids",
        "provider_config",
    }
)
"""What ``PATCH /sync/{id}`` may change besides the schedule; the rest is fixed at creation."""


class SyncUpdate(_SyncSchedule):
    """``PATCH /sync/{id}``: status (pause/resume), schedule, mappings and Sequin fields."""

    display_name: Name | None = None
    status: SyncStatus | None = None
    field_mappings: list[FieldMapping] | None = Field(default=None, max_length=MAX_FIELD_MAPPINGS)
    cursor_field: Name | None = Field(
        default=None, validation_alias=AliasChoices("cursor_field", "source_cursor_field")
    )
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    lookback: int | None = Field(default=None, ge=0, le=MAX_LOOKBACK)
    null_cursor: NullCursor | None = None
    deletes: DeleteMode | None = None
    max_delete_fraction: float | None = Field(default=None, gt=0, le=1)
    delete_check_every: int | None = Field(default=None, ge=1, le=2**31 - 1)
    rate_limit: RateLimit | None = None
    metadata: JsonObject | None = None
    external_id: str | None = Field(default=None, max_length=255)
    collection_ids: list[Name] | None = Field(default=None, max_length=MAX_COLLECTIONS)
    provider_config: JsonObject | None = None
    # Immutable after creation: given, they are rejected with a message naming the field.
    credential_id: int | None = None
    source_id: int | None = None
    object_id: int | None = None
    destination_id: int | None = None
    end_customer_id: str | None = None
    provider: str | None = None
    credential: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _immutable(self) -> SyncUpdate:
        for name in (
            "credential_id",
            "source_id",
            "object_id",
            "destination_id",
            "end_customer_id",
            "provider",
            "credential",
        ):
            if getattr(self, name) is not None:
                raise invalid(name, f"{name} cannot be changed after the sync is created")
        return self


class Sync(_Resource):
    """A sync as the API shows it."""

    id: int
    organization_id: int
    display_name: str
    source_id: int | None
    destination_id: int
    object_id: int | None
    end_customer_id: str
    provider: str | None = None
    collection_ids: list[str] = Field(default_factory=list)
    credential_id: int | None = None
    provider_config: dict[str, Any] = Field(default_factory=dict)
    namespace: str | None
    table_name: str | None
    custom_join: str | None
    cursor_field: str | None
    primary_key: str | None
    field_mappings: list[FieldMapping]
    sync_mode: SyncMode
    frequency: int | None
    frequency_units: FrequencyUnits | None
    continuous: bool
    max_age_days: int | None
    lookback: int | None
    null_cursor: NullCursor = NullCursor.INCLUDE
    deletes: DeleteMode | None = None
    """``None``: the object's default (else ignore)."""
    max_delete_fraction: float | None = None
    """``None``: 0.5."""
    delete_check_every: int | None = None
    """``None``: every run."""
    rate_limit: RateLimit | None
    metadata: dict[str, Any]
    external_id: str | None
    status: SyncStatus
    health: Health
    backfill_completed_at: dt.datetime | None
    cursor_position: CursorPosition | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sync_frequency(self) -> str | None:
        """Sequin's shorthand for the schedule: ``"continuous"``, ``"4h"``, ..."""
        if self.continuous:
            return "continuous"
        if self.frequency is None or self.frequency_units is None:
            return None
        return to_shorthand(self.frequency, self.frequency_units)


# --- runs ----------------------------------------------------------------------------------


class RunStats(_Body):
    """Counters a runner reports at checkpoints and when it finishes."""

    rows_read: Count = 0
    rows_inserted: Count = 0
    rows_updated: Count = 0
    """Rows present before whose values changed."""
    rows_deleted: Count = 0
    rows_unchanged: Count = 0
    """Rows read again (cursor boundary, lookback) with the values already written."""
    rows_written: Count = 0
    batches: int = Field(default=0, ge=0, le=2**31 - 1)


class SyncRun(_Resource):
    """One execution of a sync."""

    id: int
    sync_id: int
    status: RunStatus
    full_refresh: bool
    requested_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    duration_seconds: float | None
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_unchanged: int = 0
    rows_written: int
    batches: int
    cursor_before: CursorPosition | None
    cursor_after: CursorPosition | None
    error: str | None
    runner_id: str | None
    lease_expires_at: dt.datetime | None
    runner_host: str | None = None
    """The machine whose runner process (``runner_pid``) started the run."""
    runner_pid: int | None = None
    lease_seconds: float | None = None
    """The lease's TTL: it expires this long after the last heartbeat or checkpoint."""
    heartbeat_at: dt.datetime | None = None
    """When the runner last reported (start, heartbeat or checkpoint)."""


class FileAccess(_Resource):
    """Where a runner may open file databases: a server's ``SYNC_PIPELINES_FILE_ROOTS``."""

    roots: list[str]
    denied: list[str] = Field(default_factory=list)


class RunLease(_Resource):
    """What ``start_run`` grants a runner: the run, everything it needs, sealed secrets.

    A provider sync has no source or object; it has a sealed ``credential`` instead.
    ``file_access`` confines file databases (``None``: unrestricted, the embedded API).
    """

    run: SyncRun
    sync: Sync
    object: SyncObject | None
    source: Source | None
    destination: Destination
    source_connection: SealedConnection | None
    destination_connection: SealedConnection
    credential: SealedCredential | None = None
    file_access: FileAccess | None = None


# --- API-provider syncs (Sequin) -----------------------------------------------------------


class CredentialInput(_Body):
    """An inline credential: ``kind`` (api_key, bearer, basic, ...) and secret ``properties``."""

    kind: Name = "api_key"
    properties: dict[Name, Secret] = Field(min_length=1, max_length=MAX_CREDENTIAL_PROPERTIES)


class CredentialCreate(CredentialInput):
    """``POST /credential``: a provider account's secrets, stored encrypted."""

    provider: Name
    display_name: str | None = Field(default=None, max_length=255)


class CredentialUpdate(_Body):
    """``PATCH /credential/{id}``: rename or rotate the secrets; the provider stays."""

    display_name: str | None = Field(default=None, max_length=255)
    properties: dict[Name, Secret] | None = Field(
        default=None, min_length=1, max_length=MAX_CREDENTIAL_PROPERTIES
    )
    provider: str | None = None

    @model_validator(mode="after")
    def _immutable(self) -> CredentialUpdate:
        if self.provider is not None:
            raise invalid("provider", "provider cannot be changed after the credential is created")
        return self


class Credential(_Resource):
    """A credential as the API shows it: every property ``"***"``."""

    id: int
    organization_id: int
    provider: str
    kind: str
    display_name: str | None
    properties: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


class SealedCredential(_Resource):
    """A credential for a runner: ``{kind, properties}`` encrypted with the shared key."""

    provider: str
    kind: str
    sealed: str


class ProviderSyncCreate(_SyncSchedule):
    """``POST /sync`` with a ``provider``: Sequin's API-provider sync.

    Each collection (``provider:object``, e.g. ``stripe:customer``) lands in its own table
    ``<namespace>.<object>`` on the destination.
    """

    provider: Name
    display_name: Name = Field(validation_alias=AliasChoices("display_name", "name"))
    destination_id: Id
    namespace: Name | None = None
    collection_ids: list[Name] = Field(min_length=1, max_length=MAX_COLLECTIONS)
    credential: CredentialInput | None = None
    credential_id: Id | None = None
    rate_limit: RateLimit | None = None
    provider_config: JsonObject = Field(default_factory=dict)
    max_age_days: int | None = Field(default=None, gt=0, le=MAX_AGE_DAYS)
    metadata: JsonObject = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=255)
    end_customer_id: CustomerId | None = None
    status: SyncStatus = SyncStatus.ACTIVE

    _customer_id = field_validator("end_customer_id", mode="before")(_coerce_customer_id)

    @model_validator(mode="after")
    def _credential_and_collections(self) -> ProviderSyncCreate:
        if (self.credential is None) == (self.credential_id is None):
            raise invalid("credential", "give exactly one of credential and credential_id")
        for collection in self.collection_ids:
            provider, _, name = collection.partition(":")
            if provider != self.provider or not name:
                raise invalid(
                    "collection_ids",
                    f"collection_ids: {collection!r} is not a {self.provider} collection; "
                    f"use '{self.provider}:<object>'",
                )
        if len(set(self.collection_ids)) != len(self.collection_ids):
            raise invalid("collection_ids", "collection_ids: a collection is listed twice")
        return self


class Permit(_Resource):
    """The rate limiter's answer: go now (``permit_id``), or wait ``wait_seconds`` and ask again."""

    granted: bool
    permit_id: int | None = None
    wait_seconds: float = 0.0


def _sync_body_kind(value: Any) -> str:
    provider = (
        value.get("provider") if isinstance(value, dict) else getattr(value, "provider", None)
    )
    return "provider_sync" if provider is not None else "database_sync"


AnySyncCreate = Annotated[
    Annotated[SyncCreate, Tag("database_sync")]
    | Annotated[ProviderSyncCreate, Tag("provider_sync")],
    Discriminator(_sync_body_kind),
]
"""``POST /sync``'s body: a database sync, or with ``provider`` an API-provider sync."""
