"""``${NAME}`` in the files an operator writes (``syncs.yaml``): the environment's values.

``${NAME:-default}`` gives a default and ``$${`` is a literal ``${``. Values reaching the sync API
(connection specs, bodies) are never interpolated: only operator files are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

_VARIABLE = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class UnsetVariableError(KeyError):
    """``${NAME}`` without a default names a variable that is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (
            f"environment variable {self.name} is not set "
            f"(write ${{{self.name}:-default}} for a default)"
        )


def interpolate(
    text: str,
    variables: Mapping[str, str] | None = None,
    fallbacks: Mapping[str, Callable[[], str]] | None = None,
) -> str:
    """``text`` with each ``${NAME}`` replaced by, in this order: the environment variable, the
    entry of ``variables``, the value of ``fallbacks[NAME]()``, the ``:-default``.

    Raises:
        UnsetVariableError: none of them gives ``NAME`` a value.
    """
    variables = variables or {}
    fallbacks = fallbacks or {}

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in os.environ:
            return os.environ[name]
        if name in variables:
            return variables[name]
        if name in fallbacks:
            return fallbacks[name]()
        if default is not None:
            return default
        raise UnsetVariableError(name)

    return _VARIABLE.sub(replace, text)
