"""The Train form under a dataset: what to predict (target, task), which model family (every
one that fits by default), the model's name, the split, the time budget and, folded away,
the Advanced knobs. Pressing Train with no choice made trains every fitting family."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import InputError
from studio.core.training import families
from studio.core.training.spec import TASKS as SPEC_TASKS
from studio.core.workspace import Workspace
from studio.gui.pages.advanced_panel import AdvancedPanel
from studio.gui.worker import run_in_thread

TASKS = [t for t in SPEC_TASKS if t != "auto"]
AUTO_FAMILY = "Best of all families"
MAX_BUDGET_S = 7 * 86_400
ADVANCED_HEIGHT = 215  # the table below keeps most of a 700-pixel window


class BudgetSpin(QSpinBox):
    """Seconds; 0 reads "auto · N s" (the budget the run will choose), and a step up from
    there starts at N rather than at 1."""

    def __init__(self) -> None:
        super().__init__()
        self.auto_s = 0
        self.setRange(0, MAX_BUDGET_S)
        self.setSingleStep(10)
        self.setSuffix(" s")
        self.set_auto(0)

    def set_auto(self, seconds: float) -> None:
        self.auto_s = round(seconds)
        self.setSpecialValueText(f"auto · {self.auto_s} s" if self.auto_s else "auto")
        self.update()

    def stepBy(self, steps: int) -> None:
        if self.value() == 0 and steps > 0 and self.auto_s:
            self.setValue(self.auto_s)
        else:
            super().stepBy(steps)


class TrainForm(QWidget):
    train_requested = Signal(dict)  # TrainSpec fields
    tune_requested = Signal(dict)  # TrainSpec fields: a search on this dataset and target
    target_changed = Signal(str)  # the column to show in the profile
    message = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.info: Any = None  # the DatasetInfo the form is about
        self.table: Any = None  # its Arrow table, for the split preview
        self.profile: list[dict[str, Any]] = []
        self.images = False
        self.recipe_options: dict[str, Any] = {}  # the person's preprocessing choices
        self._busy = False
        self._split_key: Any = None
        self._model_edited = False
        self._planned: Any = None
        # each family's reason not to fit the question asked (None: it fits)
        self._reasons: dict[str, str | None] = {}

        self.target = QComboBox()
        self.target.setMinimumWidth(140)
        self.target.setPlaceholderText("choose a column…")
        self.target.currentTextChanged.connect(self._on_target)
        self.target.activated.connect(self._on_chosen)
        self.target_note = _note("")
        self.task = QComboBox()
        self.task.addItems(TASKS)
        self.task.activated.connect(self._on_chosen)
        self.task.currentTextChanged.connect(lambda _t: self._on_question())
        self.family = QComboBox()
        self.family.setToolTip("Which kind of model to train; by default every one that fits "
                               "this data trains in turn and the best on validation wins")
        self.family.addItem(AUTO_FAMILY, "auto")
        self.all_families = families.all_families()
        for f in self.all_families:
            self.family.addItem(f.title, f.name)
        self.family.currentIndexChanged.connect(lambda _i: self._on_family())
        # as wide as "Best of all families" where there is room, narrower where not
        self.family.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.family.setMinimumContentsLength(11)
        self.family.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.family.setMaximumWidth(self.family.fontMetrics().horizontalAdvance(
            "Convolutional network") + 40)
        self.ratios = [QSpinBox() for _ in range(3)]
        for box, value, tip in zip(self.ratios, (70, 15, 15),
                                   ("training", "validation", "test"), strict=True):
            box.setRange(0, 100)
            box.setValue(value)
            box.setSuffix("%")
            box.setToolTip(f"share of rows for {tip}")
            box.valueChanged.connect(self._update_split)
            box.setMaximumWidth(62)  # "100%" fits; the model's note needs the room more
        self.model_name = QLineEdit()
        self.model_name.setMinimumWidth(110)
        self.model_name.setToolTip("The model this run registers a version of")
        self.model_name.textEdited.connect(self._on_model_edited)
        self.model_note = _note("")
        self.budget = BudgetSpin()
        self.budget.setToolTip("How long the families may train, in all; each has its share "
                               "and keeps its best so far when its time is up. auto: chosen "
                               "from the data's size")
        self.recipe_btn = QPushButton("Preprocessing…")
        self.recipe_btn.setToolTip("Choose how each column is filled, encoded and scaled")
        self.recipe_btn.clicked.connect(self.edit_recipe)
        self.advanced_btn = QPushButton("Advanced ▸")
        self.advanced_btn.setCheckable(True)
        self.advanced_btn.setToolTip("Epochs, learning rate and every other knob of the "
                                     "families; empty or “default” is each family's own")
        self.advanced_btn.toggled.connect(self._on_advanced)
        self.train_btn = QPushButton("Train ▶")
        self.train_btn.setObjectName("primary")
        self.train_btn.clicked.connect(self._on_train)
        self.tune_btn = QPushButton("Tune…")
        self.tune_btn.setToolTip("Search the model family and its parameters: many short "
                                 "runs, the best kept")
        self.tune_btn.setEnabled(False)
        self.tune_btn.clicked.connect(self._on_tune)
        self.train_btn.installEventFilter(self)  # Tune is enabled whenever Train is
        self.advanced = AdvancedPanel(self.all_families)
        self.advanced.setMaximumHeight(ADVANCED_HEIGHT)
        self.advanced.hide()
        self.advanced.changed.connect(self._show_changed)

        question = _row("Target", self.target, (self.target_note, 1), "Task", self.task, 8,
                        "Family", self.family)
        run = _row("Model", self.model_name, (self.model_note, 1), "Split", *self.ratios, 8,
                   "Time budget", self.budget)
        self.split_label = QLabel()
        self.split_label.setObjectName("muted")
        self.split_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(question)
        layout.addLayout(run)
        layout.addWidget(self.split_label)
        layout.addWidget(self.advanced)
        self._on_family()

    # -- the dataset ------------------------------------------------------------------------

    def set_dataset(self, info: Any, table: Any, images: bool) -> None:
        """A dataset is shown (its profile follows): choices belong to one dataset."""
        if self.info is None or self.info.name != info.name:
            self._set_recipe({})
            self._model_edited = False
            for widget in (self.model_name, self.model_note, self.target_note):
                widget.clear()
            self.family.setCurrentIndex(0)
            self.budget.setValue(0)
            self.advanced.reset()
        self.info, self.table, self.images, self.profile = info, table, images, []
        self.split_label.setText("profiling the columns…")
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(["label"] if images else info.column_names)
        self.target.setCurrentIndex(-1)
        self.target.blockSignals(False)
        self.train_btn.setEnabled(False)

    def renamed(self, info: Any) -> None:
        self.info = info
        self._propose_model()

    def set_profile(self, info: Any, profile: list[dict[str, Any]]) -> str:
        """The columns are profiled: the target is the one chosen last time, else the one
        suggested. Returns it ("" when none suggests itself)."""
        from studio.core.datasets.profile import suggest_target

        self.info, self.profile = info, profile
        chosen = info.choices.get("target")
        if self.images:  # the label is the one thing an image dataset can be trained to predict
            target, note = "label", ""
        elif chosen in info.column_names:
            target, note = chosen, "chosen last time"
        else:
            found = suggest_target(profile)
            target, note = (found.name, f"suggested: {found.reason}") if found else ("", "")
        self.target.blockSignals(True)
        self.target.setCurrentIndex(self.target.findText(target) if target else -1)
        self.target.blockSignals(False)
        self.target_note.setText(note)
        if not target:
            self.split_label.setText("Which column should the model predict? Choose the "
                                     "target.")
            self.train_btn.setEnabled(False)
            return ""
        remembered_task = info.choices.get("task") if target == chosen else None
        QTimer.singleShot(0, self, lambda: self._on_target(target, remembered_task))
        return target

    def set_target(self, name: str) -> None:
        self.target.setCurrentText(name)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.train_btn.setEnabled(not busy and self.info is not None
                                  and bool(self.target.currentText()))
        if not busy:
            self._propose_model()  # a version was added: the next run's number changes

    # -- the question -----------------------------------------------------------------------

    def _on_target(self, name: str, task: str | None = None) -> None:
        if self.info is None or not name or not self.profile:
            return
        from studio.core.datasets.profile import suggest_task

        col = next(c for c in self.profile if c["name"] == name)
        self.task.blockSignals(True)
        self.task.setCurrentText(task if task in TASKS else "image-classification"
                                 if self.images else suggest_task(col, self.profile))
        self.task.blockSignals(False)
        self.target_changed.emit(name)
        self._on_question()

    def _on_question(self) -> None:
        self._propose_model()
        self._plan()
        self._update_split()

    def _on_chosen(self, _index: int) -> None:
        """The person picked a target or task: it is kept for the next time."""
        from studio.core.datasets.catalog import remember_choices

        if self.info is None or not self.target.currentText():
            return
        self.target_note.setText("")
        remember_choices(self.ws, self.info.name, self.target.currentText(),
                         self.task.currentText())

    def _plan(self) -> None:
        """Which families fit what is asked, and the automatic budget for it."""
        from studio.core.training.budget import planned

        if not self.profile or not self.target.currentText():
            return
        self._planned = planned(self.profile, self.target.currentText(),
                                self.recipe_options, self.images)
        task = self.task.currentText().removeprefix("text-").removeprefix("image-")
        model = self.family.model()
        self._reasons = {}
        for f, reason in families.fitting(task, self._planned.modality):
            i = self.family.findData(f.name)
            model.item(i).setEnabled(reason is None)  # type: ignore[attr-defined]
            self.family.setItemData(i, f.description if reason is None else
                                    f"Does not fit: {reason}", Qt.ItemDataRole.ToolTipRole)
            self._reasons[f.name] = reason
        self.budget.set_auto(self._planned.budget())
        if self._reasons.get(self.family.currentData()):
            self.family.setCurrentIndex(0)  # the one chosen no longer fits (calls _on_family)
        else:
            self._on_family()

    def _on_family(self) -> None:
        chosen = self.family.currentData()
        self.advanced.set_families(self._reasons, chosen)
        if chosen != "auto":
            self.advanced.show_family(chosen)
            self.train_btn.setToolTip(f"Train {self.family.currentText().lower()} within the "
                                      "time budget")
        else:
            self.train_btn.setToolTip("Train every family that fits, each within its share "
                                      "of the time budget; the best on the validation split "
                                      "becomes the version")
        self._show_changed()

    def _on_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self._show_changed()

    def _show_changed(self) -> None:
        n = self.advanced.changed_count()
        count = " (…)" if n < 0 else f" ({n})" if n else ""
        arrow = "▾" if self.advanced_btn.isChecked() else "▸"
        self.advanced_btn.setText(f"Advanced{count} {arrow}")

    # -- the model's name -------------------------------------------------------------------

    def _on_model_edited(self, _text: str) -> None:
        self._model_edited = True
        self._propose_model()

    def _propose_model(self) -> None:
        """The model this run registers under: the dataset's, or a new name when that model's
        latest version answers another question. A name the person typed is kept."""
        from studio.core.names import NAME_RE
        from studio.core.registry import latest_version, propose_model_name, same_question

        if self.info is None or not self.target.currentText():
            return
        target, task = self.target.currentText(), self.task.currentText()
        if not self._model_edited:
            self.model_name.setText(propose_model_name(self.ws, self.info.name, target, task))
        name = self.model_name.text().strip()
        latest = latest_version(self.ws, name) if name else None
        if not NAME_RE.match(name):
            note = "⚠ not a valid name"
            tip = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        elif latest is None:
            other = latest_version(self.ws, self.info.name)
            note, tip = "a new model", f"registers {name}:1"
            if other is not None and not same_question(other, target, task):
                note += f": {other.ref} predicts “{other.manifest.raw.get('target')}”"
        elif not same_question(latest, target, task):
            note = f"⚠ {latest.ref} predicts “{latest.manifest.raw.get('target')}” ({latest.kind})"
            tip = (f"{name} would change meaning: its latest version predicts "
                   f"{latest.manifest.raw.get('target')!r}. Another name keeps them apart.")
        else:
            note = f"adds version {latest.version + 1}"
            tip = f"{latest.ref} is the latest version"
        self.model_note.setText(note)
        self.model_note.setToolTip(f"{note}\n{tip}")

    # -- the split --------------------------------------------------------------------------

    def split_ratios(self) -> list[float]:
        return [box.value() / 100 for box in self.ratios]

    def _update_split(self) -> None:
        """Rows per split, and per class for classification, as training will cut them."""
        if self.table is None or not self.profile or not self.target.currentText():
            return
        ratios = self.split_ratios()
        if abs(sum(ratios) - 1) > 1e-9:
            self._split_error(f"The split adds up to {sum(ratios):.0%}: it must be 100%.")
            return
        from studio.core.datasets.split import split_preview

        data, name = self.table, self.target.currentText()
        classify = self.task.currentText().endswith("classification")
        key = (self.info.name, name, classify, tuple(ratios))
        self._split_key = key
        # The column is read in the worker too: a lazy table reads it from disk.
        run_in_thread(lambda: (key, split_preview(data.column(name), classify, tuple(ratios))),
                      self._on_split, lambda m: self._split_error(m, key))

    def _split_error(self, message: str, key: Any = None) -> None:
        if key is not None and key != self._split_key:
            return  # about choices the person has changed since
        self.split_label.setText(f"<span style='color:#d93025'>{html.escape(message)}</span>")
        self.train_btn.setEnabled(False)

    def _on_split(self, result: tuple[Any, dict[str, Any]]) -> None:
        key, preview = result
        if key != self._split_key:
            return  # the choices changed while it was counting
        self.train_btn.setEnabled(not self._busy)
        text = " · ".join(f"{n} {size:,}" for n, size in
                          zip(("train", "validation", "test"), preview["sizes"], strict=True))
        classes = preview.get("classes")
        if classes is None:
            self.split_label.setText(f"Seeded split: {text}")
            return
        if len(classes) <= 12:
            per = ", ".join(f"{html.escape(c)} {'/'.join(map(str, n))}"
                            for c, n in sorted(classes.items()))
            text += f"  —  per class (train/validation/test): {per}"
        self.split_label.setText(f"Seeded split, stratified by class: {text}")

    # -- preprocessing and the run ----------------------------------------------------------

    def edit_recipe(self) -> Any:
        """Open the preprocessing dialog; returns it (shown modeless) for tests and callers."""
        from studio.gui.pages.recipe_dialog import RecipeDialog

        if self.info is None or not self.profile:
            return None
        dialog = RecipeDialog(self.ws, self.info, self.profile, self.target.currentText(),
                              self.task.currentText(), self.split_ratios(),
                              self.recipe_options, self)
        dialog.accepted.connect(lambda: self._set_recipe(dialog.options()))
        dialog.open()
        return dialog

    def _set_recipe(self, options: dict[str, Any]) -> None:
        self.recipe_options = options
        n = len(options.get("columns", {}))
        self.recipe_btn.setText(f"Preprocessing ({n})…" if n else "Preprocessing…")
        self._plan()  # a dropped text column changes which families fit

    def set_knob(self, name: str, value: Any, family: str | None = None) -> None:
        """Set an Advanced knob as a person would: a common one, or ``family``'s own."""
        knobs = self.advanced.own[family] if family else self.advanced.common
        knobs[name].set_value(value)

    def spec(self) -> dict[str, Any]:
        """The TrainSpec fields chosen here: what the person changed, no more (the spec's
        defaults, and each family's, are the rest). InputError for a knob typed halfway."""
        fields: dict[str, Any] = {
            "dataset": self.info.name, "target": self.target.currentText(),
            "task": self.task.currentText(), "family": self.family.currentData(),
            "split": self.split_ratios(), "preprocessing": self.recipe_options,
            "model": self.model_name.text().strip() or None}
        if self.budget.value():
            fields["time_budget_s"] = float(self.budget.value())
        fields.update(self.advanced.spec_fields())
        return fields

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.train_btn and event.type() == QEvent.Type.EnabledChange:
            self.tune_btn.setEnabled(self.train_btn.isEnabled())
        return super().eventFilter(watched, event)

    def _on_tune(self) -> None:
        self._send(self.tune_requested)

    def _on_train(self) -> None:
        self._send(self.train_requested)

    def _send(self, signal: Any) -> None:
        """The form's choices to Train or Tune; a knob typed halfway is said instead."""
        if self.info is None or not self.target.currentText():
            return
        try:
            fields = self.spec()
        except InputError as exc:
            self.advanced_btn.setChecked(True)  # where the knob to fix is
            self.message.emit(str(exc))
            return
        signal.emit(fields)


def _note(text: str) -> QLabel:
    """A muted remark beside a control; it gives up width (elided) before any control does."""
    from studio.gui.widgets.elided_label import ElidedLabel

    label = ElidedLabel(text)
    label.setObjectName("muted")
    return label


def _row(*parts: Any) -> QHBoxLayout:
    """A row of a form: a string is a label, an int a gap, (widget, n) a widget that
    stretches n, anything else a widget."""
    row = QHBoxLayout()
    for part in parts:
        if isinstance(part, str):
            row.addWidget(QLabel(part))
        elif isinstance(part, int):
            row.addSpacing(part)
        elif isinstance(part, tuple):
            row.addWidget(*part)
        else:
            row.addWidget(part)
    return row
