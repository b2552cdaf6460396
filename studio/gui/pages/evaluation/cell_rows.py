"""The rows of one confusion cell: a table of their values, or thumbnails of their pictures,
read from the dataset in a worker thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pages.evaluation.document import Evaluation
from studio.gui.pages.evaluation.plain import PlainElided, label, tip
from studio.gui.pages.evaluation.source import DatasetRows
from studio.gui.widgets.table_model import TableModel, fit_columns, format_block
from studio.gui.worker import run_in_thread

THUMB_PX = 72
MAX_THUMBNAILS = 300  # pictures read for one cell; the count says how many there are


class CellRows(QWidget):
    def __init__(self, evaluation: Evaluation, source: DatasetRows,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.evaluation, self.source = evaluation, source
        self.asked: tuple[int, int] | None = None
        self.numbers: list[int] = []  # the dataset rows of the cell shown, in order
        self.title = PlainElided("")  # the actual class
        self.title.setObjectName("result")
        self.predicted = PlainElided("")
        self.predicted.setObjectName("result")
        self.count = label("", "muted")
        self.message = label("Click a cell of the matrix to list its rows.", "muted")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.model = TableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.pictures = QListWidget()
        self.pictures.setViewMode(QListView.ViewMode.IconMode)
        self.pictures.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.pictures.setResizeMode(QListView.ResizeMode.Adjust)
        self.pictures.setMovement(QListView.Movement.Static)
        self.pictures.setSpacing(4)
        self.stack = QStackedWidget()
        for w in (self.message, self.table, self.pictures):
            self.stack.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.predicted)
        layout.addWidget(self.count)
        layout.addWidget(self.stack, 1)
        if not evaluation.full:
            self.message.setText("The rows of each cell come with the full evaluation:\n"
                                 f"{evaluation.evaluate_command()}")
            self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def show_cell(self, actual: int, predicted: int) -> None:
        ev = self.evaluation
        labels = ev.labels
        count = ev.confusion[actual][predicted] if ev.confusion else 0
        what = "predicted right" if actual == predicted else "mistaken"
        self.title.setText(f"Actual: {labels[actual]}")
        self.predicted.setText(f"Predicted: {labels[predicted]}")
        self.count.setText(f"{count:,} row{'s' if count != 1 else ''}, {what}")
        if not ev.full:
            return
        self.asked = (actual, predicted)
        positions = ev.cell_positions(actual, predicted)
        rows = ev.section("rows")
        self.numbers = [int(rows["index"][k]) for k in positions]
        if not positions:
            self._say("No row here." if count == 0 else
                      "None of this cell's rows is among the rows the evaluation kept.")
            return
        if ev.truncated and len(positions) < count:
            self.count.setText(self.count.text() + f"; {len(positions):,} of them kept")
        conf = rows.get("confidence") or []
        extra: dict[str, list[Any]] = {"row": self.numbers}
        if len(conf) == len(rows["index"]):
            extra["confidence"] = [None if conf[k] is None else round(conf[k], 3)
                                   for k in positions]
        self._say("Reading the rows from the dataset…")
        numbers, source, key = self.numbers, self.source, self.asked

        def load() -> tuple[Any, Any, Any, Any]:
            table = source.rows(numbers, extra)
            thumbs = source.thumbnails(numbers[:MAX_THUMBNAILS], THUMB_PX)
            return key, table, format_block(table, 0), thumbs

        run_in_thread(load, self._on_rows, self._on_failed)

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def _on_rows(self, loaded: tuple[Any, Any, Any, Any]) -> None:
        key, table, first_block, thumbs = loaded
        if key != self.asked:
            return  # another cell was clicked since
        if self.source.images:
            self._show_pictures(table, thumbs)
            return
        self.model.set_table(table, first_block=first_block)
        fit_columns(self.table)
        self.stack.setCurrentWidget(self.table)

    def _show_pictures(self, table: Any, thumbs: list[Any]) -> None:
        self.pictures.clear()
        paths = table.column("path").to_pylist() if "path" in table.column_names else []
        conf = table.column("confidence").to_pylist() if "confidence" in \
            table.column_names else []
        for k, image in enumerate(thumbs):
            text = f"row {self.numbers[k]}" + (f"\n{conf[k]:.0%}" if k < len(conf)
                                               and conf[k] is not None else "")
            item = QListWidgetItem(text)
            if image is not None:
                item.setIcon(QPixmap.fromImage(image))
            details = f"row {self.numbers[k]}" + (f"\n{paths[k]}" if k < len(paths) else "")
            item.setToolTip(tip(details if image is not None else details + "\n(unreadable)"))
            self.pictures.addItem(item)
        if len(self.numbers) > len(thumbs):
            self.count.setText(self.count.text() + f"; the first {len(thumbs):,} shown")
        self.stack.setCurrentWidget(self.pictures)

    def _on_failed(self, message: str) -> None:
        self._say(f"The rows cannot be shown: {message}")
