"""Choose the preprocessing per column and see the table as the model will see it."""

from __future__ import annotations

import html
import math
from typing import Any

from PySide6.QtCore import QLocale, QSize, Qt, QTimer
from PySide6.QtGui import QDoubleValidator, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.widgets.table_model import TableModel, fit_columns
from studio.gui.worker import run_in_thread

HEADERS = ["Use", "Column", "Kind", "Missing values", "Encoding / scaling / size",
           "Clip 1–99%"]
NUMERIC_FILLS = ["median", "mean", "most_frequent", "constant"]
CATEGORY_FILLS = ["all zeros", "most_frequent"]
USABLE = ("numeric", "categorical", "boolean", "text", "image")
TOKEN_LENGTHS = ["auto length", "16 words", "32 words", "64 words", "128 words", "256 words"]
PREVIEW_ROWS = 200_000
IMAGE_SIZES = [f"{n}×{n} px" for n in (32, 48, 64, 96, 128, 224)]
PICTURES = 12  # training pictures shown as the model gets them
PICTURE_PX = 96  # shown this big, pixel for pixel enlarged: a 32-pixel picture looks coarse


class RecipeDialog(QDialog):
    def __init__(self, ws: Workspace, info: Any, profile: list[dict[str, Any]], target: str,
                 task: str, split: list[float], options: dict[str, Any] | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Preprocessing — {info.name} → {target}")
        self.resize(1100, 700)
        self.ws, self.info, self.target, self.task, self.split = ws, info, target, task, split
        self.frame: Any = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.ok_btn: QPushButton | None = None  # made after the rows; waits for valid values
        choices = (options or {}).get("columns", {})
        self.grid = QTableWidget(0, len(HEADERS))
        self.grid.setHorizontalHeaderLabels(HEADERS)
        self.grid.verticalHeader().hide()
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.grid.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        from studio.core.datasets.prepare import is_image_dataset

        self.kinds = {c["name"]: c["kind"] for c in profile}  # as training will judge them
        if is_image_dataset(info.column_names):  # training sees the picture, not the manifest
            profile = [{"name": "image", "kind": "image"}]
        for col in profile:
            if col["name"] != target:
                self._add_row(col, choices.get(col["name"], {}))
        self.preview_model = TableModel()
        self.preview = QTableView()
        self.preview.setModel(self.preview_model)
        self.status = QLabel("Preparing the preview…")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.pictures = _picture_strip()
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.status)
        lower_layout.addWidget(self.pictures)
        lower_layout.addWidget(self.preview, 1)
        self.pictures.setVisible("image" in self.rows)  # in a layout first: never a window
        split_view = QSplitter(Qt.Orientation.Vertical)
        split_view.addWidget(self.grid)
        split_view.addWidget(lower)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_btn = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self._check_values()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Steps are fitted on the training split only; the same recipe "
                                "runs in training, in <code>studio predict</code> and in the "
                                "server."))
        layout.addWidget(split_view, 1)
        layout.addWidget(buttons)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(250)
        self._debounce.timeout.connect(self.refresh_preview)
        self._fitting = self._again = False

        from studio.core.datasets.catalog import load_sample

        # A preview needs no millions of rows: a big dataset is fitted on a spread sample
        # here (training fits on all its training rows).
        self.sampled = info.rows > PREVIEW_ROWS
        run_in_thread(lambda: load_sample(ws, info, PREVIEW_ROWS), self._on_frame,
                      self._on_error)

    def _add_row(self, col: dict[str, Any], choice: dict[str, Any]) -> None:
        r = self.grid.rowCount()
        self.grid.insertRow(r)
        usable = col["kind"] in USABLE
        use = QCheckBox()
        use.setChecked(usable and not choice.get("drop"))
        use.setEnabled(usable and col["kind"] != "image")
        fill, encode, clip = QComboBox(), QComboBox(), QCheckBox()
        value: QLineEdit | None = None  # the number a "constant" fill writes
        if col["kind"] in ("text", "image"):
            fill.addItem("empty text: no words" if col["kind"] == "text" else "—")
            fill.setEnabled(False)
            clip.setEnabled(False)
            if col["kind"] == "text":
                encode.addItems(TOKEN_LENGTHS)
                if "max_tokens" in choice:
                    encode.setCurrentText(f"{choice['max_tokens']} words")
            else:
                encode.addItems(IMAGE_SIZES)
                size = choice.get("size", 64)
                encode.setCurrentText(f"{size}×{size} px")
        elif col["kind"] == "numeric":
            fill.addItems(NUMERIC_FILLS)
            fill.setCurrentText(choice.get("fill", "median"))
            value = _number_field(choice.get("fill_value", 0))
            encode.addItems(["standard", "minmax", "none"])
            encode.setCurrentText(choice.get("scale", "standard"))
            clip.setChecked(bool(choice.get("clip")))
        elif usable:
            fill.addItems(CATEGORY_FILLS)
            fill.setCurrentText("most_frequent" if choice.get("fill") == "most_frequent"
                                else "all zeros")
            encode.addItems(["onehot", "ordinal"])
            encode.setCurrentText(choice.get("encode", "onehot"))
            clip.setEnabled(False)
        else:
            for w in (fill, encode, clip):
                w.setEnabled(False)
        for c, w in ((0, use), (3, _beside(fill, value)), (4, encode), (5, clip)):
            self.grid.setCellWidget(r, c, w)
        name = QTableWidgetItem(col["name"])
        kind = QTableWidgetItem(col["kind"] if usable else f"{col['kind']} (not used yet)")
        self.grid.setItem(r, 1, name)
        self.grid.setItem(r, 2, kind)
        for w in (use, clip):
            w.toggled.connect(self._changed)
        for w in (fill, encode):
            w.currentTextChanged.connect(self._changed)
        if value is not None:
            value.textChanged.connect(self._changed)
            value.textChanged.connect(lambda _text: self._check_values())
        row = {"kind": col["kind"], "use": use, "fill": fill, "encode": encode, "clip": clip,
               "fill_value": value, "usable": usable,
               # what the kind allows; "use" switches these on and off together
               "steps": [w for w in (fill, encode, clip) if w.isEnabled()]}
        self.rows[col["name"]] = row
        use.toggled.connect(lambda _on: self._sync(row))
        fill.currentTextChanged.connect(lambda _text: self._sync(row))
        self._sync(row)

    def _sync(self, row: dict[str, Any]) -> None:
        """An unused column's steps are greyed out; the value box shows for a constant fill
        only (a greyed 0 on every numeric row would read as a choice)."""
        used = row["use"].isChecked()
        for w in row["steps"]:
            w.setEnabled(used)
        if row["fill_value"] is not None:
            constant = row["fill"].currentText() == "constant"
            row["fill_value"].setVisible(constant)
            row["fill_value"].setEnabled(used and constant)
        self._check_values()

    def invalid_values(self) -> list[str]:
        """The columns whose constant fill is not a number yet."""
        return [name for name, row in self.rows.items()
                if row["fill_value"] is not None and row["fill_value"].isEnabled()
                and _number(row["fill_value"].text()) is None]

    def _check_values(self) -> None:
        bad = self.invalid_values()
        for row in self.rows.values():
            if row["fill_value"] is not None:
                wrong = row["fill_value"].isEnabled() and _number(
                    row["fill_value"].text()) is None
                row["fill_value"].setStyleSheet("border: 1px solid #d93025;" if wrong else "")
        if self.ok_btn is not None:
            self.ok_btn.setEnabled(not bad)

    def options(self) -> dict[str, Any]:
        """The choices that differ from the defaults, as recipe options."""
        out: dict[str, dict[str, Any]] = {}
        for name, row in self.rows.items():
            if not row["usable"]:
                continue
            choice: dict[str, Any] = {}
            if not row["use"].isChecked():
                choice["drop"] = True
            elif row["kind"] == "text":
                words = row["encode"].currentText().split()[0]
                if words.isdigit():
                    choice["max_tokens"] = int(words)
            elif row["kind"] == "image":
                size = int(row["encode"].currentText().split("×")[0])
                if size != 64:
                    choice["size"] = size
            elif row["kind"] == "numeric":
                if row["fill"].currentText() != "median":
                    choice["fill"] = row["fill"].currentText()
                if row["fill"].currentText() == "constant":
                    number = _number(row["fill_value"].text())
                    if number is not None:  # else OK is disabled and the preview waits
                        choice["fill_value"] = number
                if row["encode"].currentText() != "standard":
                    choice["scale"] = row["encode"].currentText()
                if row["clip"].isChecked():
                    choice["clip"] = True
            else:
                if row["fill"].currentText() == "most_frequent":
                    choice["fill"] = "most_frequent"
                if row["encode"].currentText() != "onehot":
                    choice["encode"] = row["encode"].currentText()
            if choice:
                out[name] = choice
        return {"columns": out}

    def _changed(self, *_: Any) -> None:
        self._debounce.start()

    def _on_frame(self, frame: Any) -> None:
        self.frame = frame
        self.refresh_preview()

    def refresh_preview(self) -> None:
        if self.frame is None or not self.isVisible():  # accepted or closed: nobody looks
            return
        from studio.core.datasets.prepare import prepare, preview, preview_pictures

        bad = self.invalid_values()
        if bad:
            self.status.setText("<span style='color:#d93025'>Type a number to fill the "
                                f"missing values of {html.escape(', '.join(bad))}.</span>")
            return
        self.status.setText("Fitting on the training split…")
        if self._fitting:  # one fit at a time: the latest choices run when it ends
            self._again = True
            return
        self._fitting = True
        frame, options = self.frame, self.options()

        pictures = PICTURES if self.pictures.isVisibleTo(self) else 0

        def work() -> tuple[Any, dict[str, Any], list[Any]]:
            prepared = prepare(frame, self.info.name, self.target, self.task, self.split,
                               options=options, blob_path=self.ws.blobs.path, kinds=self.kinds)
            return preview(prepared), prepared.recipe, preview_pictures(prepared, pictures)

        run_in_thread(work, self._on_preview, self._on_fit_error)

    def _fit_ended(self) -> bool:
        """True when newer choices wait: their fit starts now and this result is stale."""
        self._fitting = False
        if self._again:
            self._again = False
            self.refresh_preview()
            return True
        return False

    def _on_fit_error(self, message: str) -> None:
        if not self._fit_ended():
            self._on_error(message)

    def _on_preview(self, result: tuple[Any, dict[str, Any], list[Any]]) -> None:
        import pyarrow as pa

        from studio.core.datasets.recipe import model_inputs

        table, recipe, pictures = result
        if self._fit_ended():  # newer choices are being fitted: this result is stale
            return
        self._show_pictures(pictures)
        self.preview_model.set_table(pa.Table.from_pandas(table, preserve_index=False))
        fit_columns(self.preview)
        dropped = ", ".join(d["name"] for d in recipe["dropped"]) or "none"
        inputs = ", ".join(f"{i['name']} {'×'.join(map(str, i['shape'][1:]))}"
                           for i in model_inputs(recipe))
        sample = (f" Fitted here on a sample of about {PREVIEW_ROWS:,} of the "
                  f"{self.info.rows:,} rows; training fits on all its rows."
                  if self.sampled else "")
        texts = "".join(
            f" {html.escape(f['name'])}: up to {f['max_tokens']} words"
            + (f" and {f['bigram_tokens']} word pairs" if "bigrams" in f else "") + "."
            for f in recipe["features"] if f["kind"] == "text")
        seen = ("Training pictures as the model gets them, before normalizing; below, the "
                "first rows as tensors." if pictures else
                "The first training rows as the model sees them.")
        self.status.setText(f"{seen} Tensors: {inputs}.{texts} Not used: "
                            f"{html.escape(dropped)}.{sample}")

    def _show_pictures(self, pictures: list[Any]) -> None:
        self.pictures.clear()
        for pixels, label in pictures:
            h, w = pixels.shape[:2]
            image = QImage(pixels.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            # nearest-neighbour enlargement: the model's coarseness stays visible
            icon = QPixmap.fromImage(image.scaled(
                PICTURE_PX, PICTURE_PX, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation))
            item = QListWidgetItem(icon, label)
            item.setToolTip(f"{label}: {w}×{h} px as the model gets it, shown at "
                            f"{PICTURE_PX}×{PICTURE_PX}")
            self.pictures.addItem(item)

    def _on_error(self, message: str) -> None:
        self.status.setText(f"<span style='color:#d93025'>{html.escape(message)}</span>")


def _number_field(value: Any) -> QLineEdit:
    number = float(value)
    field = QLineEdit(str(int(number)) if number.is_integer() else repr(number))
    field.setPlaceholderText("value")
    field.setToolTip("The number written where a value is missing")
    field.setMaximumWidth(90)
    validator = QDoubleValidator(field)
    validator.setLocale(QLocale.c())  # "1.5" whatever the desktop's locale: float() reads it
    field.setValidator(validator)
    return field


def _number(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _beside(fill: QComboBox, value: QLineEdit | None) -> QWidget:
    if value is None:
        return fill
    cell = QWidget()
    layout = QHBoxLayout(cell)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    layout.addWidget(fill, 1)
    layout.addWidget(value)
    return cell


def _picture_strip() -> QListWidget:
    strip = QListWidget()
    strip.setViewMode(QListView.ViewMode.IconMode)
    strip.setFlow(QListView.Flow.LeftToRight)
    strip.setWrapping(False)  # one row, scrolled sideways: the table keeps its room
    strip.setIconSize(QSize(PICTURE_PX, PICTURE_PX))
    strip.setSpacing(6)
    strip.setFixedHeight(PICTURE_PX + 48)
    strip.setMovement(QListView.Movement.Static)
    return strip
