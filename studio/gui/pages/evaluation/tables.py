"""The per-class scores and the worst errors, as sortable tables of plain text."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from studio.gui.pages.evaluation.document import Evaluation, number
from studio.gui.pages.evaluation.plain import tip
from studio.gui.widgets.sort_item import SortItem

NUMBER = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
THUMB_PX = 56
VALUE_CHARS = 60


def _sortable(table: QTableWidget) -> None:
    """Sortable by a click on a header, first shown in the document's own order."""
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    table.setSortingEnabled(True)


def _table(headers: list[str], rows: int, parent: QWidget | None = None) -> QTableWidget:
    table = QTableWidget(rows, len(headers), parent)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    return table


def _cell(text: str, key: Any = None, numeric: bool = False) -> QTableWidgetItem:
    item = SortItem(text, text if key is None else key)
    if numeric:
        item.setTextAlignment(NUMBER)
    return item


def _key(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("-inf")


class ScoreBar(QStyledItemDelegate):
    """A score between 0 and 1 drawn as a pale bar behind its number: a column reads at a
    glance, the weak classes stand out."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Any) -> None:
        value = index.data(Qt.ItemDataRole.UserRole)
        if isinstance(value, float) and 0 <= value <= 1:
            rect = option.rect.adjusted(2, 4, -2, -4)
            rect.setWidth(round(rect.width() * value))
            painter.fillRect(rect, QColor("#d2e3fc"))
        super().paint(painter, option, index)


def per_class_table(evaluation: Evaluation) -> QTableWidget:
    rows = evaluation.section("per_class") or []
    headers = ["Class", "Precision", "Recall", "F1", "Support", "ROC-AUC"]
    table = _table(headers, len(rows))
    table.setItemDelegate(ScoreBar(table))
    for r, row in enumerate(rows):
        name = str(row.get("label"))
        first = _cell(name)
        first.setToolTip(tip(name))
        table.setItem(r, 0, first)
        for c, key in enumerate(("precision", "recall", "f1", "support", "roc_auc"), start=1):
            item = _cell(number(row.get(key)), _key(row.get(key)), numeric=True)
            if key != "support" and isinstance(row.get(key), int | float):
                item.setData(Qt.ItemDataRole.UserRole, float(row[key]))
            table.setItem(r, c, item)
    table.resizeColumnsToContents()
    table.setColumnWidth(0, min(max(table.columnWidth(0), 160), 320))
    for c in range(1, len(headers)):
        table.setColumnWidth(c, 120)
    table.horizontalHeader().setStretchLastSection(False)
    _sortable(table)
    return table


class WorstTable(QTableWidget):
    """The worst errors, worst first; a picture's row shows its thumbnail once read."""

    def __init__(self, evaluation: Evaluation, parent: QWidget | None = None) -> None:
        self.worst: list[dict[str, Any]] = list(evaluation.section("worst") or [])
        regression = evaluation.task == "regression"
        columns: list[str] = []
        for w in self.worst:
            columns += [c for c in (w.get("values") or {}) if c not in columns]
        self.value_columns = columns
        last = "Error (predicted − actual)" if regression else "Confidence"
        headers = ["Row", "Actual", "Predicted", last, *columns]
        super().__init__(len(self.worst), len(headers), parent)
        self.setHorizontalHeaderLabels(headers)
        for c, name in enumerate(headers):
            self.horizontalHeaderItem(c).setToolTip(tip(name))
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)
        for r, w in enumerate(self.worst):
            self.setItem(r, 0, _cell(str(w.get("row")), _key(w.get("row")), numeric=True))
            for c, key in ((1, "actual"), (2, "predicted")):
                value = w.get(key)
                text = number(value, 4) if regression else str(value)
                item = _cell(text, _key(value) if regression else text, numeric=regression)
                item.setToolTip(tip(text))
                self.setItem(r, c, item)
            measure = w.get("error") if regression else w.get("confidence")
            text = number(measure, 4) if regression or measure is None else f"{measure:.1%}"
            self.setItem(r, 3, _cell(text, _key(measure), numeric=True))
            values = w.get("values") or {}
            for c, name in enumerate(columns, start=4):
                full = "" if values.get(name) is None else str(values.get(name))
                item = _cell(full[:VALUE_CHARS] + ("…" if len(full) > VALUE_CHARS else ""))
                item.setToolTip(tip(full))
                self.setItem(r, c, item)
        head = self.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.resizeColumnsToContents()
        for c in range(self.columnCount()):
            self.setColumnWidth(c, min(self.columnWidth(c), 260))
        _sortable(self)

    def set_thumbnails(self, images: list[Any]) -> None:
        """The rows' pictures, in the order of ``worst`` (None: not readable)."""
        self.setIconSize(QSize(THUMB_PX, THUMB_PX))
        for item in (self.item(r, 0) for r in range(self.rowCount())):
            k = next((i for i, w in enumerate(self.worst) if str(w.get("row")) == item.text()),
                     None)
            if k is not None and k < len(images) and images[k] is not None:
                item.setIcon(QPixmap.fromImage(images[k]))
        self.verticalHeader().setDefaultSectionSize(THUMB_PX + 6)
        self.setColumnWidth(0, THUMB_PX + 70)
