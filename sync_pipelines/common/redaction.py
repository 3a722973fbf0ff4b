"""Hiding secrets (passwords, credentials) in messages: one scanner, one threshold."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
"""What a secret shows as: in messages, and in API responses (write-only fields)."""
MIN_SECRET_LENGTH = 3
"""Shorter values are not replaced: a one- or two-character "secret" would mask ordinary text."""


def secret_values(values: Iterable[object]) -> list[str]:
    """The distinct secret texts among ``values``, longest first (so that a secret containing
    another is replaced whole); empty, ``None`` and too short values left out."""
    texts = {str(value) for value in values if value is not None}
    return sorted((t for t in texts if len(t) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
