"""The methods to apply: a checkbox each with its settings (one Knob per Param, shown while
ticked), greyed with the reason where a method does not apply to the version; Chain; and,
when the version's training data is gone, the dataset to use instead."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.core.compress.methods import METHODS, Method
from studio.core.registry.manifest import Manifest
from studio.gui.pages.compress import plan
from studio.gui.pages.evaluation.plain import PlainElided, label, tip
from studio.gui.widgets.knob import Knob
from studio.gui.widgets.knob import label as knob_label

NO_DATASET = "Choose a dataset…"


class MethodRow(QWidget):
    """One method: its checkbox, a line about it, why it does not apply, its settings."""

    def __init__(self, method: Method, on_change: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = method
        self.applies = False
        self.box = QCheckBox(method.title)
        self.box.setObjectName(f"method-{method.name}")
        self.box.setToolTip(tip(method.description))
        self.box.toggled.connect(lambda _on: (self._show_settings(), on_change()))
        self.about = PlainElided(method.description)
        self.about.setObjectName("muted")
        # under the method, wrapped: the advice at a reason's end ("distil it into a network
        # first") is the part a person needs
        self.reason = label("")
        self.reason.setWordWrap(True)
        self.reason.setContentsMargins(24, 0, 0, 2)
        self.reason.setStyleSheet("color: #a15c00;")
        self.reason.hide()
        self.knobs = [Knob(p, on_change=on_change) for p in method.settings]
        self.settings = QWidget()
        form = QFormLayout(self.settings)
        form.setContentsMargins(24, 0, 0, 4)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for knob in self.knobs:
            form.addRow(label(knob_label(knob.param.name)), knob.widget)
        self.settings.hide()
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.box)
        head.addSpacing(6)
        head.addWidget(self.about, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 2, 0, 2)
        box.setSpacing(2)
        box.addLayout(head)
        box.addWidget(self.reason)
        box.addWidget(self.settings)

    def set_reason(self, reason: str | None) -> None:
        """Greyed, unticked and explained where the method does not apply."""
        self.applies = reason is None
        self.box.setEnabled(self.applies)
        if reason is not None:
            self.box.setChecked(False)
        self.about.setVisible(reason is None)
        self.reason.setText(reason or "")
        self.reason.setToolTip(tip(f"Does not apply: {reason}" if reason else ""))
        self.reason.setVisible(bool(reason))
        self.box.setToolTip(tip(self.method.description + (
            f"\n\nDoes not apply: {reason}" if reason else "")))
        self._show_settings()

    def _show_settings(self) -> None:
        self.settings.setVisible(bool(self.knobs) and self.box.isChecked())

    def values(self) -> dict[str, Any]:
        """The settings changed from their defaults (raises InputError for a half-typed
        one, naming it)."""
        out = {}
        for knob in self.knobs:
            value = knob.value()
            if value is not None:
                out[knob.param.name] = value
        return out


class MethodPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manifest: Manifest | None = None
        self.missing: str | None = None
        self.has_versions = True  # the registry has any at all (told by the page)
        self._ticked_once = False
        self.rows: dict[str, MethodRow] = {}
        self.rows = {m.name: MethodRow(m, self._on_change) for m in METHODS}
        inner = QWidget()
        list_box = QVBoxLayout(inner)
        list_box.setContentsMargins(4, 4, 8, 4)
        for row in self.rows.values():
            list_box.addWidget(row)
        list_box.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        self.chain = QCheckBox("Chain (each step on the previous result)")
        self.chain.setToolTip(tip("Off: each method is applied to the chosen version, side by "
                                  "side. On: distill → prune → quantize, each step starting "
                                  "from the one before; every step is a version of its own."))
        self.chain.toggled.connect(lambda _on: self._on_change())
        self.data_note = label("", "muted")
        self.data_note.setWordWrap(True)
        self.dataset = QComboBox()
        self.dataset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset.setMinimumContentsLength(16)
        self.dataset.currentIndexChanged.connect(lambda _i: self._on_change())
        self.data_box = QWidget()
        data_layout = QVBoxLayout(self.data_box)
        data_layout.setContentsMargins(0, 0, 0, 0)
        data_layout.addWidget(self.data_note)
        self.dataset_row = QWidget()
        row = QHBoxLayout(self.dataset_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(label("Dataset"))
        row.addWidget(self.dataset, 1)
        data_layout.addWidget(self.dataset_row)
        self.data_box.hide()
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(label("Methods", "sectionTitle"))
        box.addWidget(scroll, 1)
        box.addWidget(self.chain)
        box.addWidget(self.data_box)

    def set_version(self, manifest: Manifest | None, missing: str | None,
                    datasets: list[str]) -> None:
        """Show what applies to the version (None: no version, nothing applies).
        ``missing`` says why its training data is gone (None: it is here)."""
        self.manifest, self.missing = manifest, missing
        chosen = self.dataset.currentData()
        self.dataset.blockSignals(True)
        self.dataset.clear()
        self.dataset.addItem(NO_DATASET, None)
        for name in datasets:
            self.dataset.addItem(name, name)
        self.dataset.setCurrentIndex(max(0, self.dataset.findData(chosen)))
        self.dataset.blockSignals(False)
        self._update(initial=True)

    def _on_change(self) -> None:
        if len(self.rows) < len(METHODS):  # a knob set while the rows are being made
            return
        self._update()
        self.changed.emit()

    def _update(self, initial: bool = False) -> None:
        if self.manifest is None:
            for row in self.rows.values():
                row.set_reason("")  # greyed; the line above the page says why
        else:
            reasons = plan.reasons(self.manifest, self.ticked(), self.chain.isChecked())
            for name, row in self.rows.items():
                row.box.blockSignals(True)
                row.set_reason(reasons[name])
                row.box.blockSignals(False)
            if initial and not self._ticked_once and reasons["int8-dynamic"] is None:
                self._ticked_once = True  # a first run needs no more than Run
                self.rows["int8-dynamic"].box.setChecked(True)
        self.data_box.setVisible(bool(self.missing) and self.manifest is not None)
        self.dataset_row.setVisible(self._dataset_usable())
        if self.missing:
            sentence = self.missing.removesuffix(" (--dataset)") + "."
            if self._dataset_usable() and not plan.needs_data(self.ticked()):
                sentence += " Without one the results are measured but not evaluated."
            elif not self._dataset_usable():
                sentence += " The results are measured but not evaluated."
            self.data_note.setText(sentence)

    def _dataset_usable(self) -> bool:
        """A dataset stands in for missing training data only where a recipe reads it."""
        return bool(self.missing) and self.manifest is not None and \
            self.manifest.recipe is not None

    def ticked(self) -> list[str]:
        # not isEnabled(): that is False too while the whole panel is (during a run)
        return [name for name, row in self.rows.items() if row.box.isChecked()
                and row.applies]

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        """(method, changed settings) for each ticked method; raises InputError for a
        setting typed halfway."""
        return [(name, self.rows[name].values()) for name in self.ticked()]

    def chosen_dataset(self) -> str | None:
        return self.dataset.currentData() if self._dataset_usable() else None

    def blocker(self) -> str | None:
        if self.manifest is None:
            return ("Choose a version to compress" if self.has_versions else
                    "No model to compress yet: train one on the Training page (or import one "
                    "on the Models page), then choose it here")
        return plan.blocker(self.ticked(), self.chain.isChecked(), self.missing,
                            self.chosen_dataset())
