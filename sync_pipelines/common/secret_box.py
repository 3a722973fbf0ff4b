"""Encryption of connection secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from ``$SYNC_PIPELINES_SECRET_KEY``; on first embedded use one is generated into
the local home (``secret.key``, mode 0600). A sync API server and the runners that execute its
syncs share the key: the API hands runners sealed connections, never plaintext secrets.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from sync_pipelines.common import settings


class SecretKeyError(RuntimeError):
    """The secret key is missing, malformed, or not the one that sealed a value."""


KEY_FILE = "secret.key"
"""The home's key file, when ``$SYNC_PIPELINES_SECRET_KEY`` is not set."""


@lru_cache(maxsize=8)
def _fernet(key: str) -> Fernet:
    try:
        return Fernet(key.encode())
    except ValueError as error:
        raise SecretKeyError(
            f"{settings.SECRET_KEY_ENV} is not a valid key: generate one with "
            "`sync-pipelines api generate-secret-key`"
        ) from error


def load_key(*, create: bool = True) -> str:
    """The secret key: the environment's, else the home's ``secret.key`` (made if ``create``)."""
    key = os.environ.get(settings.SECRET_KEY_ENV)
    if key:
        return key
    path = settings.home() / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise SecretKeyError(f"no secret key: set {settings.SECRET_KEY_ENV}")
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def generate_key() -> str:
    """A new random key for ``$SYNC_PIPELINES_SECRET_KEY``."""
    return Fernet.generate_key().decode()


def seal(data: dict[str, Any], key: str | None = None) -> str:
    """Encrypt a JSON-able mapping into an opaque token."""
    return _fernet(key or load_key()).encrypt(json.dumps(data).encode()).decode()


def unseal(token: str, key: str | None = None) -> dict[str, Any]:
    """Decrypt a token made by :func:`seal`."""
    try:
        return json.loads(_fernet(key or load_key()).decrypt(token.encode()))
    except InvalidToken as error:
        raise SecretKeyError(
            f"cannot decrypt a sealed connection: {settings.SECRET_KEY_ENV} differs from the key "
            "of the sync API that sealed it"
        ) from error
