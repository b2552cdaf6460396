"""HTTP to the page's own server, never blocking the GUI thread: ``/admin/stats`` once a
second, the admin routes (what is served, a canary), and the try-it request. Every call is
a QNetworkAccessManager reply handled when it finishes; a poll is skipped while the
previous one is still out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QTimer, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest

POLL_MS = 1000
TIMEOUT_MS = 3000
ADMIN_TIMEOUT_MS = 120_000  # loading a big version takes a while

Done = Callable[[int, dict[str, Any]], None]  # HTTP status (0: no answer), JSON body


class ServerClient(QObject):
    stats = Signal(dict)  # each /admin/stats answer
    unreachable = Signal(str)  # a poll that got no answer, and why

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.url: str | None = None
        self.net = QNetworkAccessManager(self)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self._polling: QNetworkReply | None = None
        self.polls = 0  # answers received, for tests and the status line

    def watch(self, url: str) -> None:
        self.url = url
        self.timer.start()
        self.poll()

    def unwatch(self) -> None:
        self.url = None
        self.timer.stop()
        if self._polling is not None:
            self._polling.abort()

    def poll(self) -> None:
        if self.url is None or self._polling is not None:
            return
        self._polling = self._send("GET", "/admin/stats", None, self._on_stats, TIMEOUT_MS)

    def _on_stats(self, status: int, doc: dict[str, Any]) -> None:
        self._polling = None
        if status == 200:
            self.polls += 1
            self.stats.emit(doc)
        elif self.url is not None:
            self.unreachable.emit(doc.get("error") or f"HTTP {status}")

    def add(self, ref: str, done: Done) -> None:
        self._send("POST", "/admin/models", {"ref": ref}, done, ADMIN_TIMEOUT_MS)

    def remove(self, ref: str, done: Done) -> None:
        self._send("DELETE", f"/admin/models/{_quoted(ref)}", None, done, ADMIN_TIMEOUT_MS)

    def set_canary(self, serves: str, candidate: str, percent: float, done: Done) -> None:
        body = {"serves": serves, "candidate": candidate, "percent": percent}
        self._send("PUT", "/admin/canary", body, done, ADMIN_TIMEOUT_MS)

    def end_canary(self, serves: str, done: Done) -> None:
        self._send("DELETE", f"/admin/canary/{_quoted(serves)}", None, done,
                   ADMIN_TIMEOUT_MS)

    def post(self, path: str, body: Any, done: Done) -> None:
        self._send("POST", path, body, done, ADMIN_TIMEOUT_MS)

    def _send(self, method: str, path: str, body: Any, done: Done,
              timeout_ms: int) -> QNetworkReply | None:
        if self.url is None:
            done(0, {"error": "the server is not running"})
            return None
        request = QNetworkRequest(QUrl(self.url + path))
        request.setTransferTimeout(timeout_ms)
        data = QByteArray()
        if body is not None:
            request.setHeader(QNetworkRequest.KnownHeaders.ContentTypeHeader,
                              "application/json")
            data = QByteArray(json.dumps(body).encode())
        reply = self.net.sendCustomRequest(request, method.encode(), data)
        reply.finished.connect(lambda: _finish(reply, done))
        return reply


def _quoted(ref: str) -> str:
    return QUrl.toPercentEncoding(ref).data().decode()


def _finish(reply: QNetworkReply, done: Done) -> None:
    status = reply.attribute(QNetworkRequest.Attribute.HttpStatusCodeAttribute) or 0
    raw = bytes(reply.readAll().data())
    error = reply.errorString()
    reply.deleteLater()
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    if status == 0:
        doc.setdefault("error", error)
    done(int(status), doc)
