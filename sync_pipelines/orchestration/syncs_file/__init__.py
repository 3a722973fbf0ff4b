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

``entries`` holds what a file is made of, ``parse`` reads and validates one, ``to_api`` applies
it.
"""

from sync_pipelines.orchestration.syncs_file.entries import (
    FILE_DIR_VARIABLE,
    HOME_VARIABLE,
    SECTIONS,
    AppliedSyncs,
    DestinationEntry,
    ObjectEntry,
    SourceEntry,
    SyncEntry,
    SyncsFile,
    SyncsFileError,
)
from sync_pipelines.orchestration.syncs_file.parse import load_syncs_yaml, parse_syncs
from sync_pipelines.orchestration.syncs_file.to_api import apply_syncs_file

__all__ = [
    "FILE_DIR_VARIABLE",
    "HOME_VARIABLE",
    "SECTIONS",
    "AppliedSyncs",
    "DestinationEntry",
    "ObjectEntry",
    "SourceEntry",
    "SyncEntry",
    "SyncsFile",
    "SyncsFileError",
    "apply_syncs_file",
    "load_syncs_yaml",
    "parse_syncs",
]
