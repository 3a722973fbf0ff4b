"""The ASGI middlewares around the sync API: the request body limit and Fabra 0.1.0's query."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_pipelines.api.error_handlers import error_response

MAX_BODY_BYTES = 1_048_576
"""The largest request body; a larger one gets 413 before it is read."""


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` gets 413 (by its Content-Length, before it
    is read, or as soon as the streamed bytes pass the limit)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"at most {self.max_bytes} bytes"
        response = error_response(
            413,
            f"the request body is too large ({message})",
            [{"field": "body", "message": message}],
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


_V010_CONNECTION_ID = re.compile(rb"(^|&)connectionID=")


class FabraV010Query:
    """ASGI middleware: Fabra 0.1.0 sent ``?connectionID=``; it reaches the app as
    ``connection_id`` (the documented name) unless that is given too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if _V010_CONNECTION_ID.search(query) and not re.search(rb"(^|&)connection_id=", query):
            scope = dict(scope, query_string=_V010_CONNECTION_ID.sub(rb"\1connection_id=", query))
        await self.app(scope, receive, send)
