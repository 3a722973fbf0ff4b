"""Errors as one line of text, for run errors, logs and messages."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a DBAPI error's driver message: ``orig``), or the
    error's class name when it has no message."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
