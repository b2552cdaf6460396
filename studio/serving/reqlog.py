"""Writes the request log (``studio/core/request_log.py``) off the request path.

A request only appends a tuple to a bounded queue in memory; a background thread writes
what gathered about once a second, in one transaction, through its own database connection.
If the database is slow or locked, the queue drops its oldest entries rather than grow.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
from pathlib import Path

from studio.core import request_log
from studio.core.workspace import Workspace

FLUSH_EVERY_S = 1.0
PENDING_MAX = 50_000
log = logging.getLogger("studio.serving")


class RequestLog:
    """The request sink of :func:`studio.serving.metrics.instrument`."""

    def __init__(self, root: Path, keep: int = request_log.KEEP,
                 every_s: float = FLUSH_EVERY_S) -> None:
        self.root, self.keep, self.every_s = root, keep, every_s
        self._pending: collections.deque[tuple[float, str, str, str, int, float, int]] = \
            collections.deque(maxlen=PENDING_MAX)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, when: float, model: str, version: str, endpoint: str, status: int,
               latency_ms: float, rows: int) -> None:
        # deque.append is atomic: no lock on the request path
        self._pending.append((when, model, version, endpoint, status, latency_ms,
                              rows))

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="studio-request-log")
            self._thread.start()

    def close(self) -> None:
        """Write what is pending and stop the thread."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        ws = Workspace.open(self.root)  # this thread's own connection
        try:
            while not self._stop.wait(self.every_s):
                self._flush(ws)
            self._flush(ws)
        finally:
            ws.db.close()

    def _flush(self, ws: Workspace) -> None:
        rows = []
        while self._pending:
            try:
                rows.append(self._pending.popleft())
            except IndexError:
                break
        try:
            request_log.append(ws, rows, self.keep)
        except (sqlite3.Error, OSError) as exc:  # a locked or full disk must not end logging
            log.warning("request log: %d requests not written: %s", len(rows), exc)
