"""The entries of a ``syncs.yaml`` (sources, destinations, objects, syncs) and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sync_pipelines.contract.models import (
    DestinationCreate,
    ObjectCreate,
    SourceCreate,
    SyncCreate,
)

SECTIONS = ("sources", "destinations", "objects", "syncs")


HOME_VARIABLE = "SYNC_PIPELINES_HOME"


FILE_DIR_VARIABLE = "SYNCS_FILE_DIR"


class SyncsFileError(ValueError):
    """``syncs.yaml`` is malformed, invalid, or cannot be applied to the sync API.

    Attributes:
        path: the file.
        entry: the entry, e.g. ``syncs[1] 'acme events'`` (``None`` for the file as a whole).
        field: the field within the entry, e.g. ``field_mappings[0].source_field_name``.
        line: the entry's line in the file, when known.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        entry: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.entry = entry
        self.field = field
        self.line = line
        self.message = message
        where = self.path + (f":{line}" if line else "")
        parts = [where] + [part for part in (entry, field) if part]
        super().__init__(": ".join(parts) + f": {message}")


@dataclass(frozen=True)
class Located:
    name: str
    section: str
    index: int
    line: int | None

    @property
    def entry(self) -> str:
        return f"{self.section}[{self.index}] {self.name!r}"


@dataclass(frozen=True)
class SourceEntry(Located):
    """A source of the file: ``body`` is the ``POST /source`` body."""

    body: SourceCreate


@dataclass(frozen=True)
class DestinationEntry(Located):
    """A destination of the file: ``body`` is the ``POST /destination`` body."""

    body: DestinationCreate


@dataclass(frozen=True)
class ObjectEntry(Located):
    """An object of the file; ``destination`` names its destination entry."""

    destination: str
    body: ObjectCreate
    """The ``POST /object`` body (its ``destination_id`` is filled in when applied)."""


@dataclass(frozen=True)
class SyncEntry(Located):
    """A sync of the file; ``source`` and ``object`` name their entries."""

    source: str
    object: str
    body: SyncCreate
    """The ``POST /sync`` body (ids filled in when applied)."""
    given: frozenset[str]
    """The fields the file sets (only these are updated on an existing sync)."""


@dataclass(frozen=True)
class SyncsFile:
    """A parsed, validated ``syncs.yaml``."""

    path: Path
    sources: Sequence[SourceEntry] = ()
    destinations: Sequence[DestinationEntry] = ()
    objects: Sequence[ObjectEntry] = ()
    syncs: Sequence[SyncEntry] = ()

    def error(self, entry: Located, message: str, field: str | None = None) -> SyncsFileError:
        """An error naming this file, ``entry`` and ``field``."""
        return SyncsFileError(self.path, message, entry=entry.entry, field=field, line=entry.line)


@dataclass
class AppliedSyncs:
    """What applying a file did: ids by entry name, and what was created or updated."""

    source_ids: dict[str, int] = field(default_factory=dict)
    destination_ids: dict[str, int] = field(default_factory=dict)
    object_ids: dict[str, int] = field(default_factory=dict)
    sync_ids: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
