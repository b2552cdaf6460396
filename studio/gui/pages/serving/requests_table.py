"""The newest requests, read from the workspace's request log: what servers answered, also
after a restart of the server or of the app."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from studio.core import request_log
from studio.core.workspace import Workspace

SHOWN = 200
HEADERS = ["Time", "Model", "Route", "Status", "Latency", "Rows"]
ERROR = QColor("#d93025")


class RecentRequests(QTableWidget):
    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.ws = ws
        self._newest = -1
        self.setHorizontalHeaderLabels(HEADERS)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def refresh(self) -> bool:
        """Read the log again when it has grown; whether it had."""
        newest = request_log.newest_id(self.ws)
        if newest == self._newest:
            return False
        self._newest = newest
        rows = request_log.recent(self.ws, SHOWN)
        self.setRowCount(len(rows))
        for i, r in enumerate(rows):
            when = time.strftime("%H:%M:%S", time.localtime(r.time))
            cells = [f"{when}.{int(r.time % 1 * 1000):03d}", f"{r.model}:{r.version}",
                     r.endpoint, str(r.status), f"{r.latency_ms:.2f} ms", str(r.rows)]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if r.status >= 400:
                    item.setForeground(ERROR)
                self.setItem(i, j, item)
        return True
