"""Notice what other processes change in the workspace (a `studio` command in a terminal, a
second window): datasets and model versions appear within a second or two."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.workspace import Workspace

POLL_MS = 1000


class WorkspaceWatch(QObject):
    datasets_changed = Signal()
    models_changed = Signal()

    def __init__(self, ws: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self._version: int | None = None
        self._datasets: Any = None
        self._models: Any = None
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.check)

    def start(self) -> None:
        self.check()
        self.timer.start()

    def check(self) -> None:
        # SQLite's data_version moves only when another connection commits: one cheap
        # statement a second. A training job commits metric rows every epoch, so what
        # changed is then compared before any page is told.
        version = self.ws.db.conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._version = version
        datasets = self.ws.db.conn.execute(
            "SELECT name, digest, rows, description, choices FROM datasets ORDER BY name"
        ).fetchall()
        # what the Models page lists: versions, and what a terminal's `studio models alias`,
        # `tag`, `describe`, `card` or `archive` changes on them
        conn = self.ws.db.conn
        models = (conn.execute("SELECT name, version, archived, description, card_digest"
                               " FROM versions ORDER BY name, version").fetchall(),
                  conn.execute("SELECT * FROM aliases ORDER BY name, alias").fetchall(),
                  conn.execute("SELECT * FROM tags ORDER BY name, version, key").fetchall())
        first = self._datasets is None
        if not first and datasets != self._datasets:
            self.datasets_changed.emit()
        if not first and models != self._models:
            self.models_changed.emit()
        self._datasets, self._models = datasets, models
