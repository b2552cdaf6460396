"""Try it: a form generated from a version's input schema sends one row to the server, and
the answer is shown with its class probabilities."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.widgets.image_picker import ImagePicker

Field = QLineEdit | QComboBox | QPlainTextEdit | ImagePicker


class TryIt(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schema: list[dict[str, Any]] = []
        self.means: dict[str, float] = {}
        self.fields: dict[str, Field] = {}
        self.ref: str | None = None  # the version the form was built for
        self.form = QFormLayout()
        form_box = QWidget()
        form_box.setLayout(self.form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_box)
        self.predict_btn = QPushButton("Predict")
        self.predict_btn.setObjectName("primary")
        self.predict_btn.setEnabled(False)
        try_box = QGroupBox("One row")
        try_layout = QVBoxLayout(try_box)
        try_layout.addWidget(scroll, 1)
        try_layout.addWidget(self.predict_btn)

        self.answer = QLabel("Start the server, fill in a row and press Predict.")
        self.answer.setObjectName("answer")
        self.answer.setWordWrap(True)
        self.bars = QVBoxLayout()
        answer_box = QGroupBox("Answer")
        answer_layout = QVBoxLayout(answer_box)
        answer_layout.addWidget(self.answer)
        answer_layout.addLayout(self.bars)
        answer_layout.addStretch(1)

        layout = QHBoxLayout(self)
        layout.addWidget(try_box, 1)
        layout.addWidget(answer_box, 1)

    def build(self, ws: Workspace, ref: str) -> None:
        """The form for ``ref``'s raw columns (a note for a version that takes tensors)."""
        self.ref = ref
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields.clear()
        self.schema, self.means = [], {}
        if not ref:
            return
        from studio.core.registry import get_version

        version = get_version(ws, ref)
        manifest = version.manifest.raw
        if version.manifest.recipe is None:  # made elsewhere: tensors in, no columns to fill
            tensors = ", ".join(f"{t.name} {t.datatype} {list(t.shape)}"
                                for t in version.manifest.inputs) or "none (weights only)"
            note = QLabel(f"{version.ref} takes V2 tensors, not rows: {tensors}. Send them "
                          f"to /v2/models/{version.name}/infer (see Code).")
            note.setWordWrap(True)
            note.setTextFormat(Qt.TextFormat.PlainText)
            self.form.addRow(note)
            return
        recipe = {f["name"]: f for f in manifest["recipe"]["features"]}
        self.schema = manifest["input_schema"]
        for col in self.schema:
            widget: Field
            if col["kind"] == "image":
                widget = ImagePicker()
            elif col["kind"] == "text":
                widget = QPlainTextEdit()
                widget.setPlaceholderText("some text, or empty for missing")
                widget.setFixedHeight(72)
            elif col["kind"] == "categorical":
                widget = QComboBox()
                widget.setEditable(True)
                widget.addItems(col["categories"])
            else:
                widget = QLineEdit()
                mean = recipe[col["name"]].get("mean")
                if isinstance(mean, float):
                    self.means[col["name"]] = mean
                widget.setText(f"{mean:.4g}" if isinstance(mean, float) else "")
                widget.setPlaceholderText("a number, or empty for missing")
            self.fields[col["name"]] = widget
            self.form.addRow(col["name"], widget)

    def row(self) -> dict[str, Any]:
        """The row as filled in; ValueError naming the field that is not right."""
        out: dict[str, Any] = {}
        for col in self.schema:
            w = self.fields[col["name"]]
            if isinstance(w, ImagePicker):
                out[col["name"]] = w.value()
                if out[col["name"]] is None:
                    raise ValueError(f"{col['name']}: choose an image first")
                continue
            text = (w.currentText() if isinstance(w, QComboBox) else
                    w.toPlainText() if isinstance(w, QPlainTextEdit) else w.text()).strip()
            if col["kind"] == "numeric":
                try:
                    out[col["name"]] = float(text) if text else None
                except ValueError:
                    raise ValueError(f"{col['name']}: {text!r} is not a number") from None
            else:
                out[col["name"]] = text or None
        return out

    def show_error(self, message: str) -> None:
        self._clear_bars()
        self.answer.setText(f"<span style='color:#d93025'>{html.escape(message)}</span>")

    def show_answer(self, doc: dict[str, Any]) -> None:
        self._clear_bars()
        prediction = doc["predictions"][0]
        self.answer.setText(f"Predicted: <b style='font-size:16pt'>"
                            f"{html.escape(str(prediction))}</b>")
        for label, p in zip(doc.get("labels", []), (doc.get("probabilities") or [[]])[0],
                            strict=False):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{label}  {p:.1%}")
            bar.setObjectName("probability")
            self.bars.addWidget(bar)

    def _clear_bars(self) -> None:
        while self.bars.count():
            item = self.bars.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
