"""Reading ``syncs.yaml``: YAML, ``${NAME}`` substitution, validation with the API's models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml

from sync_pipelines.common import settings
from sync_pipelines.common.env_vars import UnsetVariableError, interpolate
from sync_pipelines.contract.errors import validation_details
from sync_pipelines.contract.models import (
    DestinationCreate,
    ObjectCreate,
    SourceCreate,
    SyncCreate,
)
from sync_pipelines.orchestration.syncs_file.entries import (
    FILE_DIR_VARIABLE,
    HOME_VARIABLE,
    SECTIONS,
    DestinationEntry,
    Located,
    ObjectEntry,
    SourceEntry,
    SyncEntry,
    SyncsFile,
    SyncsFileError,
)


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
    entries: dict[str, list[tuple[Located, dict[str, Any]]]] = {}
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
            here = Located(
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
    path: Path, here: Located, value: Any, variables: Mapping[str, str], field: str = ""
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

    try:
        return interpolate(value, variables, {HOME_VARIABLE: lambda: str(settings.home())})
    except UnsetVariableError as error:
        raise SyncsFileError(
            path, str(error), entry=here.entry, field=field or None, line=here.line
        ) from None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_unique(path: Path, section: str, located: list[tuple[Located, dict]]) -> None:
    seen: dict[str, Located] = {}
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


def _validated(path: Path, here: Located, model: type[pydantic.BaseModel], data: dict) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        detail = validation_details(error.errors(include_url=False, include_input=False))[0]
        raise SyncsFileError(
            path, detail["message"], entry=here.entry, field=detail["field"], line=here.line
        ) from None


def _take(path: Path, here: Located, data: dict, name: str) -> str:
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


def _source(path: Path, here: Located, data: dict) -> SourceEntry:
    body = _validated(path, here, SourceCreate, _without_name(data))
    return SourceEntry(**vars(here), body=body)


def _destination(path: Path, here: Located, data: dict) -> DestinationEntry:
    body = _validated(path, here, DestinationCreate, _without_name(data))
    return DestinationEntry(**vars(here), body=body)


def _object(path: Path, here: Located, data: dict) -> ObjectEntry:
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


def _sync(path: Path, here: Located, data: dict) -> SyncEntry:
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
