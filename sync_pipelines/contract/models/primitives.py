"""Shared pieces of the wire models: request and response bases, bounds on sizes, secrets."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sync_pipelines.common.frequency import (
    FrequencyUnits,
    interval_seconds,
)
from sync_pipelines.common.redaction import MASK

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


MAX_WORKERS = 32  # threads loading a backfill's key ranges in one run


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


Name = Annotated[str, Field(min_length=1, max_length=255)]


Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


def _coerce_customer_id(value: Any) -> Any:
    """Fabra 0.1.0 sent ``end_customer_id`` as an integer; it is a string now."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


CustomerId = Annotated[str, Field(min_length=1, max_length=255)]


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
