"""What the running server serves, as it says itself, with each version's numbers; Add…
and Remove change it through the admin routes, without a restart; Canary… sends a share of
the selected one's requests to another version."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

HEADERS = ["Serving", "Requests", "p95"]


class ServedModels(QWidget):
    add_clicked = Signal()
    remove_clicked = Signal(str)  # the ref as asked (NAME:N or NAME@ALIAS)
    canary_clicked = Signal(str)  # the ref as asked
    selected = Signal(str, str)  # the ref as asked, the NAME:N it serves now

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.refs: list[dict[str, str]] = []
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in ((1, 82), (2, 64)):  # numbers: the name gets the rest
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(column, width)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.add_btn = QPushButton("Add…")
        self.add_btn.setToolTip("Serve another version or alias too, without a restart")
        self.add_btn.clicked.connect(self.add_clicked)
        self.remove_btn = QPushButton("Remove")
        self.remove_btn.setToolTip("Stop serving the selected one; requests under way finish")
        self.remove_btn.clicked.connect(self._on_remove)
        self.canary_btn = QPushButton("Canary…")
        self.canary_btn.setToolTip("Send a share of the selected model's requests to another "
                                   "version and compare the two live")
        self.canary_btn.clicked.connect(self._on_canary)
        self.note = QLabel()
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_btn)
        buttons.addWidget(self.remove_btn)
        buttons.addStretch(1)
        more = QHBoxLayout()  # a third button beside them would be cut at 240 px
        more.addWidget(self.canary_btn)
        more.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(more)
        layout.addWidget(self.note)
        self.set_enabled(False)

    def set_enabled(self, running: bool) -> None:
        self.add_btn.setEnabled(running)
        self.remove_btn.setEnabled(running and bool(self.refs))
        self.canary_btn.setEnabled(running and bool(self.refs))

    def show_refs(self, refs: list[dict[str, str]], models: list[dict[str, Any]]) -> None:
        """``refs`` as /admin/stats lists them ({"ref", "serves"}), ``models`` its counts."""
        numbers = {f"{m['model']}:{m['version']}": m for m in models}
        keep = self.current()
        if [r["ref"] for r in refs] != [r["ref"] for r in self.refs]:
            self.table.setRowCount(len(refs))
        self.refs = list(refs)
        for i, r in enumerate(refs):
            m = numbers.get(r["serves"], {})
            p95 = (m.get("window") or {}).get("p95_ms")
            shown = r["ref"] if r["ref"] == r["serves"] else \
                f"{r['ref']} → {r['serves'].rsplit(':', 1)[-1]}"
            cells = [shown, f"{m.get('requests', 0):,}", "–" if p95 is None else f"{p95:.1f} ms"]
            for j, text in enumerate(cells):
                item = self.table.item(i, j)
                if item is None:
                    item = QTableWidgetItem()
                    if j:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    self.table.setItem(i, j, item)
                if item.text() != text:
                    item.setText(text)
                    if j == 0:
                        item.setToolTip(f"{r['ref']} serves {r['serves']}")
        if self.current() is None and refs:
            index = next((i for i, r in enumerate(refs) if r["ref"] == keep), 0)
            self.table.selectRow(index)
        self.remove_btn.setEnabled(self.add_btn.isEnabled() and bool(refs))
        self.canary_btn.setEnabled(self.add_btn.isEnabled() and bool(refs))

    def clear(self) -> None:
        self.refs = []
        self.note.setText("")
        self.table.setRowCount(0)
        self.set_enabled(False)

    def current(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.refs):
            return None
        return self.refs[rows[0].row()]["ref"]

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self.refs):
            r = self.refs[rows[0].row()]
            self.selected.emit(r["ref"], r["serves"])

    def _on_remove(self) -> None:
        ref = self.current()
        if ref is not None:
            self.remove_clicked.emit(ref)

    def _on_canary(self) -> None:
        ref = self.current()
        if ref is not None:
            self.canary_clicked.emit(ref)
