"""Read one collection page by page: the backfill, then the changes since the cursor.

A reader yields :class:`Chunk` s: the records of one page to upsert, the keys to delete, and the
collection's :class:`CollectionState` once that page is committed (``None``: not yet known, as in
the middle of a newest-first pass). The run writes each chunk, commits, then checkpoints the
state: a crash re-reads at most one page, and the upsert absorbs it.

How a collection is read is chosen by its description (see :mod:`sync_pipelines.providers.rest`):
keyset on the incremental parameter (ascending), a full newest-first or unordered pass, or a
listing followed by a change feed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin

import httpx

from sync_pipelines.common.typed_values import decode_value, encode_value
from sync_pipelines.contract.models import CursorPosition
from sync_pipelines.providers._http import PageRequest, ProviderHttp, server_time
from sync_pipelines.providers.errors import ProviderDataError, ProviderRequestError
from sync_pipelines.providers.records import (
    CollectionTable,
    Record,
    format_time,
    parse_time,
    truncate_time,
    value_at,
)
from sync_pipelines.providers.rest import (
    CursorPagination,
    LinkPagination,
    NoPagination,
    PagePagination,
    RestCollection,
)

__all__ = ["BACKFILL", "Chunk", "CollectionReader", "CollectionState"]

logger = logging.getLogger("sync_pipelines.providers")

BACKFILL = "backfill"
"""Key of the nested position of an unfinished listing (change-feed collections)."""


@dataclass(frozen=True)
class CollectionState:
    """Where one collection stands.

    ``cursor``/``cursor_key``: every change up to this updated-at time (and key) is in the
    destination. Change-feed collections also say whether the listing is complete
    (``backfilled``) and, while it is not, after which key it resumes (``backfill_after``).
    """

    cursor: dt.datetime | None = None
    cursor_key: Any = None
    backfilled: bool = True
    backfill_after: Any = None

    def to_position(self) -> CursorPosition:
        """The typed checkpoint form (a nested ``backfill`` position while listing)."""
        nested = None
        if not self.backfilled:
            nested = {
                BACKFILL: CursorPosition(
                    primary_key=_encode(self.backfill_after),
                )
            }
        return CursorPosition(
            cursor=_encode(self.cursor), primary_key=_encode(self.cursor_key), collections=nested
        )

    @classmethod
    def from_position(cls, position: CursorPosition | None) -> CollectionState | None:
        """Decode a checkpoint (``None``: the collection was never read)."""
        if position is None:
            return None
        nested = (position.collections or {}).get(BACKFILL)
        return cls(
            cursor=decode_value(position.cursor) if position.cursor else None,
            cursor_key=decode_value(position.primary_key) if position.primary_key else None,
            backfilled=nested is None,
            backfill_after=decode_value(nested.primary_key)
            if nested is not None and nested.primary_key
            else None,
        )


def _encode(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
    return encode_value(value)


@dataclass
class Chunk:
    """One page's worth of work for the writer."""

    records: list[Record] = field(default_factory=list)
    deleted_keys: list[Any] = field(default_factory=list)
    state: CollectionState | None = None
    """The collection's state once this chunk is committed (``None``: unchanged)."""
    rows_read: int = 0
    """Records of the collection the provider sent in this page."""


class CollectionReader:
    """Reads one collection of a provider for one run."""

    def __init__(
        self,
        table: CollectionTable,
        http: ProviderHttp,
        *,
        cutoff: dt.datetime | None,
        now: dt.datetime,
    ) -> None:
        self.table = table
        self.collection: RestCollection = table.collection
        self.http = http
        self.cutoff = cutoff
        self.now = now
        self.requests = 0

    # -- the plan of a run --

    def needs_backfill(self, state: CollectionState | None) -> bool:
        """Whether this run lists the collection (first run, unfinished or expired listing)."""
        if state is None:
            return True
        feed = self.collection.changes
        if feed is None:
            return False
        return not state.backfilled or self._feed_expired(state)

    def _feed_expired(self, state: CollectionState) -> bool:
        feed = self.collection.changes
        if feed is None or feed.retention_days is None or state.cursor is None:
            return False
        # a day's margin: the provider's retention is not to the second
        return state.cursor < self.now - dt.timedelta(days=feed.retention_days - 1)

    @property
    def reads_changes_after_backfill(self) -> bool:
        """A change feed is read right after the listing; other collections are caught up."""
        return self.collection.changes is not None

    def backfill(self, state: CollectionState | None) -> Iterator[Chunk]:
        """Read everything in the ``max_age_days`` window (resuming an unfinished listing)."""
        if self.collection.changes is not None:
            if state is not None and self._feed_expired(state):
                logger.warning(
                    "%s: the cursor %s is older than the provider keeps changes; listing again",
                    self.table.collection_id,
                    state.cursor,
                )
                state = None
            return self._listing(state)
        return self._pass(self.cutoff, backfill=True)

    def changes(self, state: CollectionState) -> Iterator[Chunk]:
        """Read what changed since ``state``."""
        if self.collection.changes is not None:
            return self._feed(state)
        floor, skip_key = state.cursor, state.cursor_key
        if self.cutoff is not None and (floor is None or floor < self.cutoff):
            floor, skip_key = self.cutoff, None
        return self._pass(floor, backfill=False, skip_key=skip_key)

    # -- pages --

    def _get(self, request: PageRequest) -> tuple[Any, httpx.Response]:
        response = self.http.get(request)
        self.requests += 1
        try:
            return response.json(), response
        except ValueError:
            raise ProviderRequestError(
                f"{self.http.provider.name} answered {request.url} with something that is not JSON",
                provider=self.http.provider.name,
                status_code=response.status_code,
            ) from None

    def _items(self, body: Any, path: str, request: PageRequest) -> list[dict[str, Any]]:
        items = value_at(body, path)
        if not isinstance(items, list):
            where = f"at {path!r}" if path else "as the answer"
            raise ProviderDataError(
                f"{self.table.collection_id}: the answer to GET {request.url} has no list {where}",
                provider=self.http.provider.name,
            )
        return [item for item in items if isinstance(item, dict)]

    @staticmethod
    def _first(path: str, params: list[tuple[str, str]], pagination: Any) -> PageRequest:
        request = PageRequest(path, list(params))
        size_param = getattr(pagination, "size_param", None)
        if size_param:
            request = request.with_param(size_param, str(pagination.size))
        if isinstance(pagination, PagePagination):
            request = request.with_param(pagination.param, str(pagination.start))
        return request

    @staticmethod
    def _next(
        pagination: Any,
        request: PageRequest,
        response: httpx.Response,
        body: Any,
        items: list[dict[str, Any]],
    ) -> PageRequest | None:
        """The provider's next page, or ``None`` after the last."""
        if isinstance(pagination, CursorPagination):
            if pagination.has_more_path is not None and not value_at(
                body, pagination.has_more_path
            ):
                return None
            if pagination.token_field is not None:
                token = value_at(items[-1], pagination.token_field) if items else None
            else:
                token = value_at(body, pagination.token_path or "")
            if token in (None, ""):
                return None
            return request.with_param(pagination.param, str(token))
        if isinstance(pagination, PagePagination):
            if not items or (pagination.size_param and len(items) < pagination.size):
                return None
            current = int(dict(request.params).get(pagination.param, pagination.start))
            return request.with_param(pagination.param, str(current + 1))
        if isinstance(pagination, LinkPagination):
            link = response.links.get("next", {}).get("url")
            if not link:
                return None
            return PageRequest(urljoin(str(response.url), link))
        assert isinstance(pagination, NoPagination)
        return None

    def _excluded(self, data: dict[str, Any]) -> bool:
        return any(name in data for name in self.collection.exclude_if_present)

    def _base_params(self) -> list[tuple[str, str]]:
        params = list(self.collection.params)
        incremental = self.collection.incremental
        if incremental is not None:
            params += list(incremental.params.items())
        return params

    # -- keyset on the incremental parameter, or one full pass --

    def _pass(
        self, floor: dt.datetime | None, *, backfill: bool, skip_key: Any = None
    ) -> Iterator[Chunk]:
        incremental = self.collection.incremental
        if incremental is not None and incremental.param and incremental.order == "ascending":
            return self._keyset(floor, skip_key)
        descending = incremental is not None and incremental.order == "descending"
        return self._scan(floor, descending=descending, backfill=backfill, skip_key=skip_key)

    def _keyset(self, floor: dt.datetime | None, skip_key: Any = None) -> Iterator[Chunk]:
        """Ascending by updated-at, each page asked from the last updated-at seen.

        Records already read at that instant are skipped; when a whole page shares one
        instant, the provider's own pagination goes on from there.
        """
        collection = self.collection
        incremental = collection.incremental
        assert incremental is not None and incremental.param
        fmt = incremental.format
        base = self._first(collection.path, self._base_params(), collection.pagination)
        anchor = truncate_time(floor, fmt) if floor is not None else None
        request = (
            base if anchor is None else base.with_param(incremental.param, format_time(anchor, fmt))
        )
        # the record the cursor points at is in the destination already
        seen: set[Any] = {skip_key} if skip_key is not None else set()
        wrote_state = False
        while True:
            body, response = self._get(request)
            items = self._items(body, collection.records_path, request)
            following = self._next(collection.pagination, request, response, body, items)
            page = [self.table.record(data) for data in items]
            if anchor is not None and any(truncate_time(r.changed_at, fmt) < anchor for r in page):
                raise ProviderRequestError(
                    f"{self.table.collection_id}: asked for records from "
                    f"{incremental.param}={format_time(anchor, fmt)}, the provider sent older "
                    "ones: it does not filter on that parameter (describe the collection with "
                    "incremental.order 'unordered' or the right parameter)",
                    provider=self.http.provider.name,
                )
            chunk = Chunk()
            for record, data in zip(page, items, strict=True):
                if self._excluded(data):
                    continue
                instant = truncate_time(record.changed_at, fmt)
                if anchor is not None and instant <= anchor and record.key in seen:
                    continue
                chunk.rows_read += 1
                if self.cutoff is not None and record.changed_at < self.cutoff:
                    continue
                chunk.records.append(record)
            if page:
                chunk.state = CollectionState(cursor=page[-1].changed_at, cursor_key=page[-1].key)
                wrote_state = True
            yield chunk
            if following is None:
                if not wrote_state:
                    # nothing new, yet read: the cursor stays (or moves up to the window)
                    yield Chunk(state=CollectionState(cursor=floor, cursor_key=skip_key))
                return
            last = truncate_time(page[-1].changed_at, fmt) if page else None
            if last is not None and (anchor is None or last > anchor):
                anchor = last
                seen = {r.key for r in page if truncate_time(r.changed_at, fmt) == anchor}
                request = base.with_param(incremental.param, format_time(anchor, fmt))
            else:
                seen |= {r.key for r in page}
                request = following

    def _scan(
        self,
        floor: dt.datetime | None,
        *,
        descending: bool,
        backfill: bool,
        skip_key: Any = None,
    ) -> Iterator[Chunk]:
        """Every page once; newest first stops at ``floor``. The state comes at the end."""
        collection = self.collection
        incremental = collection.incremental
        request = self._first(collection.path, self._base_params(), collection.pagination)
        if incremental is not None and incremental.param and floor is not None:
            request = request.with_param(
                incremental.param,
                format_time(truncate_time(floor, incremental.format), incremental.format),
            )
        window = collection.window
        if window is not None and self.cutoff is not None:
            request = request.with_param(window.param, format_time(self.cutoff, window.format))
        seen: set[Any] = set()
        newest: Record | None = None
        while request is not None:
            body, response = self._get(request)
            items = self._items(body, collection.records_path, request)
            chunk = Chunk()
            stop = False
            for data in items:
                record = self.table.record(data)
                if floor is not None and record.changed_at < floor:
                    if descending:
                        stop = True
                        break
                    continue
                if self._excluded(data):
                    continue
                if record.key in seen:
                    continue
                seen.add(record.key)
                if record.key == skip_key and record.changed_at == floor:
                    continue  # the record the cursor points at, unchanged
                chunk.rows_read += 1
                chunk.records.append(record)
                if newest is None or record.changed_at > newest.changed_at:
                    newest = record
            yield chunk
            if stop:
                break
            request = self._next(collection.pagination, request, response, body, items)
        if newest is not None:
            yield Chunk(state=CollectionState(cursor=newest.changed_at, cursor_key=newest.key))
        elif backfill:
            yield Chunk(state=CollectionState(cursor=floor))

    # -- a listing, then a change feed --

    def _listing(self, state: CollectionState | None) -> Iterator[Chunk]:
        """List the collection (newest first on Stripe), resuming after ``backfill_after``."""
        collection = self.collection
        feed = collection.changes
        assert feed is not None
        pagination = collection.pagination
        base = self._first(collection.path, list(collection.params), pagination)
        window = collection.window
        if window is not None and self.cutoff is not None:
            base = base.with_param(window.param, format_time(self.cutoff, window.format))
        anchor = state.cursor if state is not None else None
        request = base
        resumable = isinstance(pagination, CursorPagination) and pagination.token_field
        if state is not None and state.backfill_after is not None and resumable:
            request = base.with_param(pagination.param, str(state.backfill_after))
        while True:
            try:
                body, response = self._get(request)
            except ProviderRequestError as error:
                if request is base or error.status_code not in (400, 404):
                    raise
                # the record to resume after is gone (deleted): list again from the start
                logger.warning(
                    "%s: cannot resume the listing (%s); listing from the start",
                    self.table.collection_id,
                    error,
                )
                request = base
                continue
            if anchor is None:
                anchor = server_time(response) - dt.timedelta(seconds=feed.anchor_margin_seconds)
            items = self._items(body, collection.records_path, request)
            following = self._next(pagination, request, response, body, items)
            chunk = Chunk()
            for data in items:
                if self._excluded(data):
                    continue
                record = self.table.record(data)
                if self.cutoff is not None and record.changed_at < self.cutoff:
                    continue
                chunk.rows_read += 1
                chunk.records.append(record)
            last_key = self.table.key_of(items[-1]) if items else None
            chunk.state = CollectionState(
                cursor=anchor,
                backfilled=following is None,
                backfill_after=last_key if following is not None and resumable else None,
            )
            yield chunk
            if following is None:
                return
            request = following

    def _feed(self, state: CollectionState) -> Iterator[Chunk]:
        """Changes since the cursor, newest first: each record's newest change applies once."""
        collection = self.collection
        feed = collection.changes
        assert feed is not None
        since = state.cursor or dt.datetime.fromtimestamp(0, dt.UTC)
        if self.cutoff is not None and since < self.cutoff:
            since = self.cutoff  # older changes concern records outside the window
        request = self._first(feed.path, list(feed.params), feed.pagination).with_param(
            feed.since_param,
            format_time(truncate_time(since, feed.since_format), feed.since_format),
        )
        seen: set[Any] = set()
        newest: tuple[dt.datetime, Any] | None = None
        key_path = collection.primary_key
        while request is not None:
            body, response = self._get(request)
            events = self._items(body, feed.records_path, request)
            chunk = Chunk()
            for event in events:
                if feed.object_type_path is not None and (
                    value_at(event, feed.object_type_path) != feed.object_type
                ):
                    continue
                data = value_at(event, feed.record_path)
                if not isinstance(data, dict) or value_at(data, key_path) is None:
                    continue
                if self._excluded(data):
                    continue
                try:
                    changed = parse_time(value_at(event, feed.changed_at), feed.changed_at_format)
                except (ValueError, TypeError, OverflowError):
                    changed = None
                if changed is None:
                    raise ProviderDataError(
                        f"{self.table.collection_id}: a change event has no valid "
                        f"{feed.changed_at!r}",
                        provider=self.http.provider.name,
                    )
                chunk.rows_read += 1
                key = self.table.key_of(data)
                if newest is None or changed > newest[0]:
                    newest = (changed, value_at(event, "id"))
                if key in seen:
                    continue  # an older change of a record already written in this pass
                seen.add(key)
                if value_at(event, feed.type_path) in feed.delete_types:
                    chunk.deleted_keys.append(key)
                elif self.cutoff is None or changed >= self.cutoff:
                    chunk.records.append(Record(data, key, changed))
            yield chunk
            request = self._next(feed.pagination, request, response, body, events)
        final = replace(state, backfilled=True, backfill_after=None)
        if newest is not None and (state.cursor is None or newest[0] >= state.cursor):
            final = replace(final, cursor=newest[0], cursor_key=newest[1])
        yield Chunk(state=final)
