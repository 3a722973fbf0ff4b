"""``syncs.yaml``: sources, destinations, objects and syncs, referenced by name.

The file is validated with the sync API's own models, so a field means the same here as in a
``POST`` body. Every error names the file, the entry and the field::

    syncs.yaml:31: syncs[1] 'globex events': frequency_units: Input should be 'minutes', ...

``${NAME}`` in any string is replaced by the environment variable ``NAME`` (``${NAME:-default}``
gives a default; ``$${`` is a literal ``${``), so secrets stay out of the file.
``${SYNC_PIPELINES_HOME}`` defaults to the local home and ``${SYNCS_FILE_DIR}`` is the directory
of the file itself.

Applying the file to the sync API is an upsert: sources, destinations and objects are matched by
name (their ``display_name``), syncs by object and end customer, so loading it again creates
nothing new; a sync's changed mutable fields (schedule, status, mappings, ...) are updated.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sync_pipelines import settings
from sync_pipelines.api.errors import SyncApiError, validation_details
from sync_pipelines.api.protocol import SyncApi
from sync_pipelines.models import (
    MASK,
    REVEAL_SECRETS,
    Destination,
    DestinationCreate,
    ObjectCreate,
    Source,
    SourceCreate,
    SyncCreate,
    SyncObject,
)
from sync_pipelines.orchestration._upsert import SyncFieldConflict, upsert_sync

logger = logging.getLogger("sync_pipelines.orchestration")

SECTIONS = ("sources", "destinations", "objects", "syncs")
HOME_VARIABLE = "SYNC_PIPELINES_HOME"
FILE_DIR_VARIABLE = "SYNCS_FILE_DIR"
_VARIABLE = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
class _Located:
    name: str
    section: str
    index: int
    line: int | None

    @property
    def entry(self) -> str:
        return f"{self.section}[{self.index}] {self.name!r}"


@dataclass(frozen=True)
class SourceEntry(_Located):
    """A source of the file: ``body`` is the ``POST /source`` body."""

    body: SourceCreate


@dataclass(frozen=True)
class DestinationEntry(_Located):
    """A destination of the file: ``body`` is the ``POST /destination`` body."""

    body: DestinationCreate


@dataclass(frozen=True)
class ObjectEntry(_Located):
    """An object of the file; ``destination`` names its destination entry."""

    destination: str
    body: ObjectCreate
    """The ``POST /object`` body (its ``destination_id`` is filled in when applied)."""


@dataclass(frozen=True)
class SyncEntry(_Located):
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

    def error(self, entry: _Located, message: str, field: str | None = None) -> SyncsFileError:
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


# --- reading -------------------------------------------------------------------------------


def load_syncs_yaml(path: str | Path) -> SyncsFile:
    """Read and validate a ``syncs.yaml``.

    Args:
        path: the file.

    Returns:
        The validated file (nothing is written to the sync API yet; see
        :func:`apply_syncs_file`).

    Raises:
        SyncsFileError: the file is missing or not YAML, an entry is invalid, a name is defined
            twice, a reference names no entry, or an environment variable is not set.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise SyncsFileError(path, f"cannot read the file: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
        lines = _entry_lines(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise SyncsFileError(
            path, f"not valid YAML: {problem}", line=mark.line + 1 if mark else None
        ) from None
    return parse_syncs(document, path=path, lines=lines)


def parse_syncs(
    document: Any, *, path: str | Path, lines: Mapping[tuple[str, int], int] | None = None
) -> SyncsFile:
    """Validate already-parsed ``syncs.yaml`` content (e.g. a component's attributes).

    Args:
        document: the mapping of sections (``sources``, ``destinations``, ``objects``,
            ``syncs``).
        path: the file it came from, for messages and ``${SYNCS_FILE_DIR}``.
        lines: the line of each ``(section, index)`` entry, if known.

    Raises:
        SyncsFileError: as :func:`load_syncs_yaml`.
    """
    path = Path(path)
    lines = lines or {}
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SyncsFileError(
            path, "the file must be a mapping with sources, destinations, objects and syncs"
        )
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise SyncsFileError(
            path,
            f"unknown section {unknown[0]!r}; the sections are " + ", ".join(SECTIONS),
            entry=str(unknown[0]),
        )
    variables = {FILE_DIR_VARIABLE: str(path.resolve().parent)}
    entries: dict[str, list[tuple[_Located, dict[str, Any]]]] = {}
    for section in SECTIONS:
        items = document.get(section) or []
        if not isinstance(items, list):
            raise SyncsFileError(path, "must be a list of entries", entry=section)
        located = []
        for index, item in enumerate(items):
            line = lines.get((section, index))
            if not isinstance(item, dict):
                raise SyncsFileError(
                    path, "an entry must be a mapping", entry=f"{section}[{index}]", line=line
                )
            name = item.get("name")
            if name is None and section == "syncs":
                name = item.get("display_name")
            here = _Located(
                name=str(name) if name is not None else "", section=section, index=index, line=line
            )
            if name is None or not str(name).strip():
                raise SyncsFileError(
                    path, "required", entry=f"{section}[{index}]", field="name", line=line
                )
            data = _substitute(path, here, item, variables)
            located.append((here, data))
        _check_unique(path, section, located)
        entries[section] = located
    syncs_file = SyncsFile(
        path=path,
        sources=[_source(path, here, data) for here, data in entries["sources"]],
        destinations=[_destination(path, here, data) for here, data in entries["destinations"]],
        objects=[_object(path, here, data) for here, data in entries["objects"]],
        syncs=[_sync(path, here, data) for here, data in entries["syncs"]],
    )
    _check_references(syncs_file)
    return syncs_file


def _entry_lines(text: str) -> dict[tuple[str, int], int]:
    """The line (1-based) where each section's entries start."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[tuple[str, int], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                lines[(str(key.value), index)] = item.start_mark.line + 1
    return lines


def _substitute(
    path: Path, here: _Located, value: Any, variables: Mapping[str, str], field: str = ""
) -> Any:
    """``value`` with ``${NAME}`` replaced throughout (errors name the field)."""
    if isinstance(value, dict):
        return {
            key: _substitute(path, here, item, variables, _join(field, str(key)))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _substitute(path, here, item, variables, f"{field}[{index}]")
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in os.environ:
            return os.environ[name]
        if name in variables:
            return variables[name]
        if name == HOME_VARIABLE:
            return str(settings.home())
        if default is not None:
            return default
        raise SyncsFileError(
            path,
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
            entry=here.entry,
            field=field or None,
            line=here.line,
        )

    return _VARIABLE.sub(replace, value)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_unique(path: Path, section: str, located: list[tuple[_Located, dict]]) -> None:
    seen: dict[str, _Located] = {}
    for here, _data in located:
        if here.name in seen:
            raise SyncsFileError(
                path,
                f"the name {here.name!r} is already used by {seen[here.name].entry}",
                entry=here.entry,
                field="name",
                line=here.line,
            )
        seen[here.name] = here


def _validated(path: Path, here: _Located, model: type[pydantic.BaseModel], data: dict) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        detail = validation_details(error.errors(include_url=False, include_input=False))[0]
        raise SyncsFileError(
            path, detail["message"], entry=here.entry, field=detail["field"], line=here.line
        ) from None


def _take(path: Path, here: _Located, data: dict, name: str) -> str:
    """Remove and return a required reference field."""
    value = data.pop(name, None)
    if value is None or not str(value).strip():
        raise SyncsFileError(path, "required", entry=here.entry, field=name, line=here.line)
    return str(value)


def _without_name(data: dict) -> dict:
    body = dict(data)
    name = body.pop("name", None)
    body.setdefault("display_name", name)
    return body


def _source(path: Path, here: _Located, data: dict) -> SourceEntry:
    body = _validated(path, here, SourceCreate, _without_name(data))
    return SourceEntry(**vars(here), body=body)


def _destination(path: Path, here: _Located, data: dict) -> DestinationEntry:
    body = _validated(path, here, DestinationCreate, _without_name(data))
    return DestinationEntry(**vars(here), body=body)


def _object(path: Path, here: _Located, data: dict) -> ObjectEntry:
    body = _without_name(data)
    destination = _take(path, here, body, "destination")
    if "destination_id" in body:
        raise SyncsFileError(
            path,
            "name the destination entry with 'destination' instead",
            entry=here.entry,
            field="destination_id",
            line=here.line,
        )
    body["destination_id"] = 1  # a placeholder (ids start at 1): set when applied
    return ObjectEntry(
        **vars(here), destination=destination, body=_validated(path, here, ObjectCreate, body)
    )


def _sync(path: Path, here: _Located, data: dict) -> SyncEntry:
    body = _without_name(data)
    source = _take(path, here, body, "source")
    obj = _take(path, here, body, "object")
    for ids in ("source_id", "object_id", "destination_id"):
        if ids in body:
            raise SyncsFileError(
                path,
                f"name the entry with {ids.removesuffix('_id')!r} instead",
                entry=here.entry,
                field=ids,
                line=here.line,
            )
    given = frozenset(body)
    body.update(source_id=1, object_id=1)  # placeholders, set when applied
    body.setdefault("field_mappings", [])
    return SyncEntry(
        **vars(here),
        source=source,
        object=obj,
        body=_validated(path, here, SyncCreate, body),
        given=given,
    )


def _check_references(syncs_file: SyncsFile) -> None:
    destinations = {d.name for d in syncs_file.destinations}
    sources = {s.name: s for s in syncs_file.sources}
    objects = {o.name for o in syncs_file.objects}
    for obj in syncs_file.objects:
        if obj.destination not in destinations:
            raise syncs_file.error(
                obj, _unknown("destination", obj.destination, destinations), "destination"
            )
    pairs: dict[tuple[str, str], SyncEntry] = {}
    for sync in syncs_file.syncs:
        if sync.source not in sources:
            raise syncs_file.error(sync, _unknown("source", sync.source, set(sources)), "source")
        if sync.object not in objects:
            raise syncs_file.error(sync, _unknown("object", sync.object, objects), "object")
        customer = sync.body.end_customer_id or sources[sync.source].body.end_customer_id
        pair = (sync.object, customer)
        if pair in pairs:
            raise syncs_file.error(
                sync,
                f"{pairs[pair].entry} already syncs object {sync.object!r} for end customer "
                f"{customer!r} (one sync per object and end customer)",
                "object",
            )
        pairs[pair] = sync


def _unknown(kind: str, name: str, known: set[str]) -> str:
    choices = ", ".join(repr(n) for n in sorted(known)) or "none"
    return f"no {kind} named {name!r} in the file ({kind}s: {choices})"


# --- applying ------------------------------------------------------------------------------


def apply_syncs_file(client: SyncApi, syncs_file: SyncsFile) -> AppliedSyncs:
    """Upsert a file's entries into the sync API; applying it twice changes nothing.

    Sources, destinations and objects are matched by name (``display_name``), syncs by object
    and end customer. A sync's mutable fields that the file sets and that differ are updated
    (only those: a sync paused through the API stays paused unless the file sets ``status``).
    A source, destination or object whose stored definition differs from the file is left as it
    is, with a warning (the client cannot change them).

    Args:
        client: the sync API.
        syncs_file: a file from :func:`load_syncs_yaml`.

    Returns:
        The ids of every entry, and what was created or updated.

    Raises:
        SyncsFileError: the sync API rejects an entry, or an existing sync differs in a field
            that cannot change (its source, table, query, primary key or mode).
    """
    applied = AppliedSyncs()
    try:
        _apply(client, syncs_file, applied)
    except _EntryRejected as rejected:
        raise rejected.error from None
    return applied


class _EntryRejected(Exception):
    def __init__(self, error: SyncsFileError) -> None:
        self.error = error


def _rejected(syncs_file: SyncsFile, entry: _Located, error: SyncApiError) -> _EntryRejected:
    details = error.details or [{"field": None, "message": error.message}]
    first = details[0]
    message = first.get("message") or error.message
    return _EntryRejected(
        syncs_file.error(entry, f"the sync API refused it: {message}", first.get("field"))
    )


def _apply(client: SyncApi, syncs_file: SyncsFile, applied: AppliedSyncs) -> None:
    sources = _by_name(client.list_sources())
    for entry in syncs_file.sources:
        found = sources.get(entry.name)
        if found is None:
            created = _create(syncs_file, entry, lambda e=entry: client.create_source(e.body))
            applied.created.append(entry.entry)
            applied.source_ids[entry.name] = created.id
            continue
        if found.end_customer_id != entry.body.end_customer_id:
            raise _EntryRejected(
                syncs_file.error(
                    entry,
                    f"source {found.id} of that name already exists for end customer "
                    f"{found.end_customer_id!r}; a source's end customer cannot change (rename "
                    "the entry or delete the source)",
                    "end_customer_id",
                )
            )
        _warn_if_connection_differs(syncs_file, entry, found)
        applied.source_ids[entry.name] = found.id

    destinations = _by_name(client.list_destinations())
    for entry in syncs_file.destinations:
        found = destinations.get(entry.name)
        if found is None:
            created = _create(syncs_file, entry, lambda e=entry: client.create_destination(e.body))
            applied.created.append(entry.entry)
            applied.destination_ids[entry.name] = created.id
            continue
        _warn_if_connection_differs(syncs_file, entry, found)
        applied.destination_ids[entry.name] = found.id

    objects = _by_name(client.list_objects())
    for entry in syncs_file.objects:
        destination_id = applied.destination_ids[entry.destination]
        found = objects.get(entry.name)
        if found is None:
            body = entry.body.model_copy(update={"destination_id": destination_id})
            created = _create(syncs_file, entry, lambda b=body: client.create_object(b))
            applied.created.append(entry.entry)
            applied.object_ids[entry.name] = created.id
            continue
        if found.destination_id != destination_id:
            raise _EntryRejected(
                syncs_file.error(
                    entry,
                    f"object {found.id} of that name already exists on destination "
                    f"{found.destination_id}; an object cannot move (rename the entry)",
                    "destination",
                )
            )
        _warn_if_object_differs(syncs_file, entry, found)
        applied.object_ids[entry.name] = found.id

    customers = {s.name: s.body.end_customer_id for s in syncs_file.sources}
    for entry in syncs_file.syncs:
        body = entry.body.model_copy(
            update={
                "source_id": applied.source_ids[entry.source],
                "object_id": applied.object_ids[entry.object],
            }
        )
        try:
            upserted = upsert_sync(
                client,
                body,
                end_customer_id=entry.body.end_customer_id or customers[entry.source],
                given=entry.given | {"display_name"},
            )
        except SyncFieldConflict as conflict:
            field = "source" if conflict.field == "source_id" else conflict.field
            raise _EntryRejected(syncs_file.error(entry, conflict.message, field)) from None
        except SyncApiError as error:
            raise _rejected(syncs_file, entry, error) from None
        if upserted.action == "created":
            applied.created.append(entry.entry)
        elif upserted.action == "updated":
            applied.updated.append(entry.entry)
        applied.sync_ids[entry.name] = upserted.sync.id


def _by_name(items: Sequence[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        found.setdefault(item.display_name, item)
    return found


def _create(syncs_file: SyncsFile, entry: _Located, create: Any) -> Any:
    try:
        return create()
    except SyncApiError as error:
        raise _rejected(syncs_file, entry, error) from None


def _comparable_connection(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A connection without its secrets, URLs normalized (for noticing a changed definition)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key == "url":
            with contextlib.suppress(ArgumentError):
                value = make_url(value).render_as_string(hide_password=True)
        elif isinstance(value, dict):
            value = {
                k: v
                for k, v in value.items()
                if k not in {"password", "credentials"} and v is not None and v != MASK
            }
        out[key] = value
    return out


def _warn_if_connection_differs(
    syncs_file: SyncsFile, entry: SourceEntry | DestinationEntry, found: Source | Destination
) -> None:
    wanted = _comparable_connection(entry.body.connection_spec())
    stored = _comparable_connection(found.connection.model_dump(mode="json", exclude={"id"}))
    if wanted != stored:
        logger.warning(
            "%s: %s: its connection differs from the sync API's (%s %d), which is kept; "
            "delete it there or rename the entry to apply the file's",
            syncs_file.path,
            entry.entry,
            "source" if isinstance(found, Source) else "destination",
            found.id,
        )


def _warn_if_object_differs(syncs_file: SyncsFile, entry: ObjectEntry, found: SyncObject) -> None:
    wanted = entry.body.model_dump(
        mode="json",
        include={"namespace", "table_name", "end_customer_id_field", "object_fields"},
        context=REVEAL_SECRETS,
    )
    stored = found.model_dump(
        mode="json", include={"namespace", "table_name", "end_customer_id_field", "object_fields"}
    )
    if wanted != stored:
        logger.warning(
            "%s: %s: differs from the sync API's object %d, which is kept",
            syncs_file.path,
            entry.entry,
            found.id,
        )
