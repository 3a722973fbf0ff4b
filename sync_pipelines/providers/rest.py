"""The generic REST provider: an HTTP API described by configuration.

A :class:`RestProvider` says where the API is (``base_url``), how to authenticate (header
templates filled from the credential's properties, or HTTP basic auth) and, per collection, how to
list its records: the path, where the list is in the JSON answer (``records_path``), the primary
key, the updated-at field, the pagination style (a cursor token such as Stripe's
``starting_after`` + ``has_more``, a page number, or RFC 5988 ``Link`` headers), the incremental
parameter (``since``, ``updated[gte]``) and the typed top-level fields written as columns.

The ``stripe`` and ``github`` presets (:mod:`sync_pipelines.providers.stripe`,
:mod:`sync_pipelines.providers.github`) are :class:`RestProvider` values; a sync with
``provider: "rest"`` describes its own in ``provider_config``::

    {
      "base_url": "https://api.example.com/v2",
      "auth": {"headers": {"Authorization": "Bearer {token}"}},
      "collections": {
        "ticket": {
          "path": "/tickets",
          "records_path": "items",
          "updated_at": "modified_at",
          "incremental": {"param": "modified_since", "order": "ascending"},
          "pagination": {"style": "page", "param": "page", "size_param": "page_size"},
          "fields": {"id": "integer", "subject": "string", "modified_at": "timestamp"}
        }
      }
    }

How a collection is read follows from its description:

* ``incremental.order == "ascending"`` with an ``incremental.param``: keyset reading. Each page is
  requested anew with the parameter set to the last updated-at seen (records already written at
  that instant are skipped), so records updated while the run pages are never skipped, and every
  page is checkpointed. The native pagination is followed only when a whole page shares one
  updated-at value.
* ``"descending"``: the native pagination from the newest record, stopping at the cursor; the
  cursor advances when the pass is complete (records that move to the top while paging are seen
  again, never skipped).
* ``"unordered"``: every page, filtered by the parameter if there is one; the cursor advances when
  the pass is complete.
* ``changes``: a change feed (Stripe's Events API): the collection is listed once (the backfill),
  then only the feed is read, newest first, each record's latest change applied once.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sync_pipelines.contract.models import FieldType
from sync_pipelines.providers.errors import ProviderConfigError

__all__ = [
    "ChangeFeed",
    "CursorPagination",
    "FieldSpec",
    "Incremental",
    "LinkPagination",
    "NoPagination",
    "PagePagination",
    "Pagination",
    "RestAuth",
    "RestCollection",
    "RestProvider",
    "TimeFormat",
    "Window",
    "parse_rest_provider",
]

TimeFormat = Literal["iso8601", "unix", "unix_ms", "auto"]
"""How a timestamp is written: ISO 8601 text, Unix seconds, Unix milliseconds, or (when read)
whatever the value looks like (numbers are Unix seconds, text is ISO 8601)."""

RAW_COLUMN = "raw"
"""The column holding each record as JSON, as the provider sent it."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CursorPagination(_Config):
    """A cursor token: from the last record (``token_field``, Stripe's ``starting_after``) or
    from the answer (``token_path``); ``has_more_path`` says whether another page exists."""

    style: Literal["cursor"] = "cursor"
    param: str = "starting_after"
    token_field: str | None = "id"
    token_path: str | None = None
    has_more_path: str | None = "has_more"
    size_param: str | None = "limit"
    size: int = Field(default=100, gt=0)

    @model_validator(mode="after")
    def _one_token_source(self) -> CursorPagination:
        if (self.token_field is None) == (self.token_path is None):
            raise ValueError("give exactly one of token_field and token_path")
        return self


class PagePagination(_Config):
    """Page numbers: the last page is the first one with fewer than ``size`` records."""

    style: Literal["page"] = "page"
    param: str = "page"
    start: int = 1
    size_param: str | None = "per_page"
    size: int = Field(default=100, gt=0)


class LinkPagination(_Config):
    """RFC 5988 ``Link`` headers: the next page is the link with ``rel="next"``."""

    style: Literal["link"] = "link"
    size_param: str | None = "per_page"
    size: int = Field(default=100, gt=0)


class NoPagination(_Config):
    """One request answers with every record."""

    style: Literal["none"] = "none"


Pagination = Annotated[
    CursorPagination | PagePagination | LinkPagination | NoPagination,
    Field(discriminator="style"),
]


class Incremental(_Config):
    """How to ask for the records changed since the cursor, and in which order they come."""

    param: str | None = None
    """Query parameter taking the lower bound of the updated-at field (inclusive)."""
    format: TimeFormat = "iso8601"
    order: Literal["ascending", "descending", "unordered"] = "ascending"
    """Order of the answer by the updated-at field."""
    params: dict[str, str] = Field(default_factory=dict)
    """Extra query parameters for incremental reads (e.g. ``sort=updated``)."""

    @field_validator("format")
    @classmethod
    def _writable(cls, value: str) -> str:
        if value == "auto":
            raise ValueError("a parameter's format must be iso8601, unix or unix_ms")
        return value


class Window(_Config):
    """A query parameter bounding what is fetched to the ``max_age_days`` window."""

    param: str
    format: TimeFormat = "iso8601"


class FieldSpec(_Config):
    """A typed column: its type, and where its value is in the record (default: its name)."""

    type: FieldType
    path: str | None = None
    format: TimeFormat = "auto"


class ChangeFeed(_Config):
    """A feed of change events (Stripe's ``/v1/events``), newest first.

    Each event carries the changed record (``record_path``) and when it changed (``changed_at``).
    Events whose ``type_path`` value is in ``delete_types`` delete the record.
    """

    path: str
    params: list[tuple[str, str]] = Field(default_factory=list)
    records_path: str = "data"
    record_path: str = "data.object"
    changed_at: str = "created"
    changed_at_format: TimeFormat = "unix"
    since_param: str = "created[gte]"
    since_format: TimeFormat = "unix"
    type_path: str = "type"
    delete_types: frozenset[str] = frozenset()
    object_type_path: str | None = None
    object_type: str | None = None
    """Only events whose record has this type at ``object_type_path`` belong to the collection."""
    retention_days: int | None = None
    """How long the provider keeps events; an older cursor means listing the collection again."""
    anchor_margin_seconds: float = Field(default=60.0, ge=0)
    """The feed is read from this long before the backfill started (clock skew, late events)."""
    pagination: Pagination = Field(default_factory=CursorPagination)


class RestCollection(_Config):
    """One collection of records of a REST API, written to its own table."""

    path: str
    records_path: str = ""
    """Dotted path of the list in the JSON answer (``""``: the answer is the list)."""
    primary_key: str = "id"
    updated_at: str = "updated_at"
    """Dotted path of the record's last-update time."""
    updated_at_format: TimeFormat = "auto"
    cursor_column: str | None = None
    """Destination column of the updated-at time (default: the updated-at field's last part)."""
    table_name: str | None = None
    params: list[tuple[str, str]] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=LinkPagination)
    incremental: Incremental | None = None
    window: Window | None = None
    fields: dict[str, FieldType | FieldSpec] = Field(default_factory=dict)
    exclude_if_present: tuple[str, ...] = ()
    """Records holding any of these fields are not part of the collection."""
    changes: ChangeFeed | None = None

    @field_validator("params", mode="before")
    @classmethod
    def _params_pairs(cls, value: Any) -> Any:
        return _pairs(value)

    @model_validator(mode="after")
    def _consistent(self) -> RestCollection:
        if RAW_COLUMN in self.fields:
            raise ValueError(f"fields: {RAW_COLUMN!r} is the column of the raw record")
        if self.changes is not None and self.incremental is not None:
            raise ValueError("give either incremental or changes, not both")
        return self

    @property
    def cursor_name(self) -> str:
        """The destination column of the updated-at time."""
        return self.cursor_column or self.updated_at.rsplit(".", 1)[-1]

    def field_specs(self) -> dict[str, FieldSpec]:
        """Every typed column, the primary key and the cursor column included."""
        specs = {
            name: spec if isinstance(spec, FieldSpec) else FieldSpec(type=spec)
            for name, spec in self.fields.items()
        }
        key = self.primary_key.rsplit(".", 1)[-1]
        if key not in specs:
            specs = {key: FieldSpec(type=FieldType.STRING, path=self.primary_key), **specs}
        specs[self.cursor_name] = FieldSpec(type=FieldType.TIMESTAMP)
        return specs


class RestAuth(_Config):
    """Header templates (``"Bearer {token}"``), filled from the credential's properties; or
    ``basic``: HTTP basic auth from two templates."""

    headers: dict[str, str] = Field(default_factory=lambda: {"Authorization": "Bearer {token}"})
    basic: tuple[str, str] | None = None
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Other property names a template's property may be given as (``secret``: ``api_key``)."""


class RestProvider(_Config):
    """An HTTP API: where it is, how to authenticate, how to read its collections."""

    name: str = "rest"
    base_url: str
    auth: RestAuth = Field(default_factory=RestAuth)
    headers: dict[str, str] = Field(default_factory=dict)
    """Static request headers (``Accept``, API versions, ``User-Agent``)."""
    collections: dict[str, RestCollection]
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts of one request against 5xx answers, timeouts and connection errors."""
    backoff_seconds: float = Field(default=1.0, ge=0)
    """First wait between attempts; it doubles with each attempt (with jitter)."""
    max_backoff_seconds: float = Field(default=60.0, ge=0)
    max_retry_after_seconds: float = Field(default=300.0, ge=0)
    """A longer ``Retry-After`` (or rate-limit reset) fails the run instead of waiting."""
    max_rate_limited_retries: int = Field(default=20, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not have a query or fragment")
        return value.rstrip("/")


def _pairs(value: Any) -> Any:
    """Query parameters as ``[(name, value)]``: a mapping (lists repeat the name) or pairs."""
    if isinstance(value, dict):
        pairs = []
        for name, item in value.items():
            items = item if isinstance(item, list | tuple) else [item]
            pairs.extend((str(name), _param_text(v)) for v in items)
        return pairs
    return value


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_TUNABLES = (
    "timeout_seconds",
    "max_attempts",
    "backoff_seconds",
    "max_backoff_seconds",
    "max_retry_after_seconds",
    "max_rate_limited_retries",
)
"""``provider_config`` keys every provider takes (presets included)."""


def tunables(provider_config: dict[str, Any]) -> dict[str, Any]:
    """The retry and timeout settings given in a sync's ``provider_config``."""
    return {key: provider_config[key] for key in _TUNABLES if key in provider_config}


def _error_text(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def parse_rest_provider(provider_config: dict[str, Any], *, name: str = "rest") -> RestProvider:
    """The generic REST provider a sync's ``provider_config`` describes.

    Raises:
        ProviderConfigError: the description is incomplete or wrong; the message names the key.
    """
    try:
        return RestProvider.model_validate({**provider_config, "name": name})
    except ValidationError as error:
        raise ProviderConfigError(
            f"{name} provider_config is invalid: {_error_text(error)}", provider=name
        ) from None


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_template(
    template: str,
    properties: dict[str, Any],
    *,
    provider: str,
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> str:
    """A header template with ``{name}`` replaced by the credential's property ``name``.

    Raises:
        ProviderConfigError: a property is missing (the message names it, never a value).
    """

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        for candidate in (key, *(aliases or {}).get(key, ())):
            if properties.get(candidate) not in (None, ""):
                return str(properties[candidate])
        known = ", ".join(sorted(properties)) or "none"
        raise ProviderConfigError(
            f"{provider}: the credential has no property {key!r} (it has: {known})",
            provider=provider,
        )

    return _PLACEHOLDER.sub(value, template)
