"""Reading ahead: the next batch is read in a thread while the caller writes this one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

_DONE = object()
_EMPTY = object()


@dataclass
class _Failed:
    error: BaseException


class _Handoff:
    """One slot between the reading thread and the caller.

    The reader fills the slot, then waits until the caller takes the item before it reads on:
    at most two batches are held, the one being written and the one being read.
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: Any = _EMPTY
        self._closed = False

    def put(self, item: Any) -> bool:
        """Hand over ``item``; ``False`` when the caller stopped taking."""
        with self._ready:
            self._item = item
            self._ready.notify_all()
            while self._item is not _EMPTY and not self._closed:
                self._ready.wait()
            return not self._closed

    def take(self) -> Any:
        """The next item, once the reader has put it."""
        with self._ready:
            while self._item is _EMPTY:
                self._ready.wait()
            item, self._item = self._item, _EMPTY
            self._ready.notify_all()
            return item

    def close(self) -> None:
        """Stop the reader at its next hand-over."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()


def read_ahead(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Read the next batch in a thread while the caller writes this one.

    The source connection lives entirely in the reading thread; closing this generator stops it.
    """
    handoff = _Handoff()

    def produce() -> None:
        try:
            for batch in batches:
                if not handoff.put(batch):
                    break
                del batch  # not held while reading the next one
            else:
                handoff.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            handoff.put(_Failed(error))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="sync-pipelines-read", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.take()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
            del item
    finally:
        handoff.close()
        thread.join()
