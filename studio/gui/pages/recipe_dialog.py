"""Choose the preprocessing per column and see the table as the model will see it."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
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
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.status)
        lower_layout.addWidget(self.preview, 1)
        split_view = QSplitter(Qt.Orientation.Vertical)
        split_view.addWidget(self.grid)
        split_view.addWidget(lower)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
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
        for c, w in ((0, use), (3, fill), (4, encode), (5, clip)):
            self.grid.setCellWidget(r, c, w)
        name = QTableWidgetItem(col["name"])
        kind = QTableWidgetItem(col["kind"] if usable else f"{col['kind']} (not used yet)")
        self.grid.setItem(r, 1, name)
        self.grid.setItem(r, 2, kind)
        for w in (use, clip):
            w.toggled.connect(self._changed)
        for w in (fill, encode):
            w.currentTextChanged.connect(self._changed)
        self.rows[col["name"]] = {"kind": col["kind"], "use": use, "fill": fill,
                                  "encode": encode, "clip": clip, "usable": usable}

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
        from studio.core.datasets.prepare import prepare, preview

        self.status.setText("Fitting on the training split…")
        if self._fitting:  # one fit at a time: the latest choices run when it ends
            self._again = True
            return
        self._fitting = True
        frame, options = self.frame, self.options()

        def work() -> tuple[Any, dict[str, Any]]:
            prepared = prepare(frame, self.info.name, self.target, self.task, self.split,
                               options=options, blob_path=self.ws.blobs.path, kinds=self.kinds)
            return preview(prepared), prepared.recipe

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

    def _on_preview(self, result: tuple[Any, dict[str, Any]]) -> None:
        import pyarrow as pa

        from studio.core.datasets.recipe import model_inputs

        table, recipe = result
        if self._fit_ended():  # newer choices are being fitted: this result is stale
            return
        self.preview_model.set_table(pa.Table.from_pandas(table, preserve_index=False))
        fit_columns(self.preview)
        dropped = ", ".join(d["name"] for d in recipe["dropped"]) or "none"
        inputs = ", ".join(f"{i['name']} {'×'.join(map(str, i['shape'][1:]))}"
                           for i in model_inputs(recipe))
        sample = (f" Fitted here on a sample of about {PREVIEW_ROWS:,} of the "
                  f"{self.info.rows:,} rows; training fits on all its rows."
                  if self.sampled else "")
        self.status.setText(f"The first training rows as the model sees them (tensors: "
                            f"{inputs}). Not used: {html.escape(dropped)}.{sample}")

    def _on_error(self, message: str) -> None:
        self.status.setText(f"<span style='color:#d93025'>{html.escape(message)}</span>")
