"""Input drift as the server reports it in ``/admin/stats``: per served version, each
column's population stability index against the training rows, a warning line naming the
columns that moved, and one notification when a column newly moves (not again until it has
come back)."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

HEADERS = ["Version · column", "PSI", "State"]
MOVED_COLOR = QColor("#d93025")
EXPLAINED = ("How far the rows the server runs have moved from the rows each version trained "
             "on, per column: the population stability index (PSI) over the newest rows. "
             "Below 0.1 a column is stable; above {threshold:g} it has moved, and the model's "
             "answers on it deserve a look.")


class DriftWatch:
    """Which moved columns are news: a column is told once when it moves, and again only
    after it has come back (or its version stopped being served)."""

    def __init__(self) -> None:
        self.told: dict[str, set[str]] = {}

    def news(self, drift: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
        """Per version, the columns that moved since the last report."""
        fresh: dict[str, list[str]] = {}
        for ref in list(self.told):
            if ref not in drift:
                del self.told[ref]
        for ref, report in drift.items():
            moved = set(report.get("moved") or [])
            if not report.get("ready"):
                continue  # too few rows in the window says nothing, either way
            new = sorted(moved - self.told.get(ref, set()))
            self.told[ref] = moved
            if new:
                fresh[ref] = new
        return fresh

    def reset(self) -> None:
        self.told.clear()


class DriftPanel(QWidget):
    alert = Signal(str, str)  # title, text: a column that newly moved
    open_requested = Signal()  # the warning line's link: show this panel

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.watch = DriftWatch()
        self.report: dict[str, dict[str, Any]] = {}
        self._shape: list[tuple[str, list[str]]] = []  # the versions and columns drawn
        self.note = QLabel(EXPLAINED.format(threshold=0.25))
        self.note.setObjectName("muted")
        self.note.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(HEADERS)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)
        # the page puts this line where it is seen from every tab
        self.banner = QLabel()
        self.banner.setObjectName("warning")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.RichText)
        self.banner.linkActivated.connect(lambda _link: self.open_requested.emit())
        self.banner.hide()

    def show_report(self, drift: dict[str, dict[str, Any]]) -> None:
        """Each poll's ``drift`` section: redraw, warn, and raise what newly moved."""
        if drift != self.report:
            self.report = drift
            self._draw(drift)
        for ref, columns in self.watch.news(drift).items():
            psi = _psi_by_column(drift[ref])
            said = ", ".join(f"{c} (PSI {psi.get(c, 0):.2f})" for c in columns)
            self.alert.emit(f"Input drift on {ref}",
                            f"{said} moved away from the training data")

    def clear(self) -> None:
        self.report = {}
        self._shape = []
        self.watch.reset()
        self.tree.clear()
        self.banner.hide()

    def moved(self) -> dict[str, list[str]]:
        """Per version, the columns the last report says have moved."""
        return {ref: list(r["moved"]) for ref, r in self.report.items()
                if r.get("ready") and r.get("moved")}

    def _draw(self, drift: dict[str, dict[str, Any]]) -> None:
        """Items are made again only when the versions or columns change: a redraw every
        second would reset what a person scrolled to or folded."""
        shape = [(ref, [c["column"] for c in drift[ref].get("columns", [])])
                 for ref in sorted(drift)]
        if shape != self._shape:
            self._shape = shape
            self.tree.clear()
            for ref, columns in shape:
                top = QTreeWidgetItem([ref, "", ""])
                font = top.font(0)
                font.setBold(True)
                top.setFont(0, font)
                for column in columns:
                    item = QTreeWidgetItem([column, "", ""])
                    item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                    top.addChild(item)
                self.tree.addTopLevelItem(top)
                top.setExpanded(True)
        for i, (ref, _columns) in enumerate(shape):
            report, top = drift[ref], self.tree.topLevelItem(i)
            ready = bool(report.get("ready"))
            self.note.setText(EXPLAINED.format(threshold=report.get("threshold", 0.25)))
            top.setText(0, _version_line(ref, report))
            _paint(top, 1, ready and bool(report.get("moved")))
            for j, c in enumerate(report.get("columns", [])):
                item = top.child(j)
                item.setText(1, "–" if c["psi"] is None else f"{c['psi']:.3f}")
                item.setText(2, "not enough rows yet" if not ready
                             else "moved" if c["moved"] else "stable")
                _paint(item, 3, bool(c["moved"]))
        self._warn()

    def _warn(self) -> None:
        moved = self.moved()
        if not moved:
            self.banner.hide()
            return
        parts = [f"<b>{html.escape(ref)}</b>: {html.escape(', '.join(cols))}"
                 for ref, cols in sorted(moved.items())]
        self.banner.setText("⚠ Input drift — the rows served have moved away from the "
                            f"training data in {'; '.join(parts)}. "
                            "<a href='#drift'>Details</a>")
        self.banner.show()


def _paint(item: QTreeWidgetItem, columns: int, moved: bool) -> None:
    for j in range(columns):  # None: the palette's own colour again, once it came back
        item.setData(j, Qt.ItemDataRole.ForegroundRole, QBrush(MOVED_COLOR) if moved else None)


def _version_line(ref: str, report: dict[str, Any]) -> str:
    if not report.get("ready"):
        return (f"{ref} — not enough rows yet ({report.get('window_rows', 0):,} so far)")
    moved = report.get("moved") or []
    what = f"{len(moved)} column{'s' if len(moved) != 1 else ''} moved" if moved else "stable"
    return f"{ref} — {what}, over its newest {report.get('window_rows', 0):,} rows"


def _psi_by_column(report: dict[str, Any]) -> dict[str, float]:
    return {c["column"]: c["psi"] for c in report.get("columns", []) if c["psi"] is not None}
