"""A run's leaderboard: one row per model family, filled live from Candidate events, the
family the run chose marked, the version each registered row became."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from studio.core.events import Candidate
from studio.core.printable import human_bytes

COLUMNS = ["Family", "Status", "Validation", "Test", "Fit time", "Size"]
METRIC_NAMES = {"accuracy": "accuracy", "r2": "R²"}
STATUS = {"training": "training…", "done": "done", "failed": "✖ failed",
          "skipped": "skipped"}
FAILED = "#d93025"
ROW_PX = 24


@dataclass
class Row:
    family: str
    title: str
    status: str = "training"
    validation: float | None = None
    test: float | None = None
    fit_s: float = 0.0
    size_bytes: int = 0
    message: str = ""
    chosen: bool = False
    version: str | None = None


class Leaderboard(QTableWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.rows: dict[str, Row] = {}
        self.metric_name = ""
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(ROW_PX)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.setWordWrap(False)

    def clear_rows(self) -> None:
        self.rows.clear()
        self.metric_name = ""
        self.setRowCount(0)
        self._fit_height()

    def on_candidate(self, event: Candidate) -> None:
        """A family started, ended, failed or was chosen: its row, added or brought up to
        date (an event leaves what it does not carry, the size before export, as it was)."""
        row = self.rows.get(event.family)
        if row is None:
            row = self.rows[event.family] = Row(event.family, event.title)
        if event.metric and event.metric != self.metric_name:
            self.metric_name = event.metric
            name = METRIC_NAMES.get(event.metric, event.metric)
            self.setHorizontalHeaderLabels(["Family", "Status", f"Validation {name}",
                                            f"Test {name}", "Fit time", "Size"])
        row.status, row.message = event.status, event.message or row.message
        for key in ("validation", "test"):
            if getattr(event, key) is not None:
                setattr(row, key, getattr(event, key))
        row.fit_s = event.fit_s or row.fit_s
        row.size_bytes = event.size_bytes or row.size_bytes
        if event.chosen:
            for other in self.rows.values():
                other.chosen = other is row
        self._show()

    def set_board(self, board: list[dict[str, Any]]) -> None:
        """The run's stored leaderboard: every kept row's size, and the version each became."""
        for stored in board:
            row = self.rows.get(stored["family"])
            if row is None:
                row = self.rows[stored["family"]] = Row(stored["family"], stored["title"],
                                                        "done")
            row.size_bytes = stored.get("size_bytes") or row.size_bytes
            row.chosen = bool(stored.get("chosen"))
            row.version = stored.get("version")
            for key in ("validation", "test", "fit_s"):
                if stored.get(key) is not None:
                    setattr(row, key, stored[key])
        self._show()

    def set_version(self, family: str, ref: str) -> None:
        self.rows[family].version = ref
        self._show()

    def selected(self) -> Row | None:
        items = self.selectedItems()
        if not items:
            return None
        return self.rows.get(self.item(items[0].row(), 0).data(Qt.ItemDataRole.UserRole))

    def winner(self) -> Row | None:
        return next((r for r in self.rows.values() if r.chosen), None)

    def _show(self) -> None:
        """Rows best first on validation (those still training or failed after, in the order
        they came), the chosen one bold with a star."""
        keep = self.selected()
        order = sorted(self.rows.values(), key=lambda r: (
            r.validation is None, -(r.validation or 0.0), not r.chosen))
        self.setRowCount(len(order))
        for i, row in enumerate(order):
            status = STATUS.get(row.status, row.status)
            if row.chosen:
                status = "chosen" + (f" → {row.version}" if row.version else "")
            elif row.version:
                status = f"registered → {row.version}"
            cells = [("★ " if row.chosen else "") + row.title, status,
                     _score(row.validation), _score(row.test),
                     f"{row.fit_s:.1f} s" if row.fit_s else "",
                     human_bytes(row.size_bytes) if row.size_bytes else ""]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, row.family)
                tip = f"{row.title} ({row.family})"
                if row.message:
                    tip += f": {row.message}"
                # a message may quote a column name: shown as text, never as markup
                item.setToolTip(f"<p>{html.escape(tip)}</p>")
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if row.chosen:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                if row.status == "failed":
                    item.setForeground(QBrush(QColor(FAILED)))
                self.setItem(i, c, item)
            if row.status in ("failed", "skipped") and row.message:
                self.item(i, 1).setText(f"{STATUS[row.status]}: {row.message}")
        if keep is not None:
            at = next(i for i, r in enumerate(order) if r.family == keep.family)
            self.selectRow(at)
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as its rows (two at least, five at most), so the curves keep the rest."""
        shown = min(max(self.rowCount(), 2), 5)
        self.setFixedHeight(self.horizontalHeader().sizeHint().height() + shown * ROW_PX
                            + 2 * self.frameWidth())


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"

