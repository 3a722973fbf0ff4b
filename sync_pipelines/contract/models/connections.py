"""Connections, sources and destinations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sync_pipelines.contract.models.enums import ConnectionType
from sync_pipelines.contract.models.primitives import (
    REVEAL_SECRETS,
    CustomerId,
    Name,
    Secret,
    _Body,
    _coerce_customer_id,
    _Resource,
    invalid,
)


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
