"""One version's details: what it is and where it came from, its description (edited in
place), its aliases (set, moved from another version in one action, removed) and its tags."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.registry.listing import VersionRow
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import PlainElided, label, tip
from studio.gui.pages.models import ask
from studio.gui.pages.models.chips import ALIAS, TAG, ChipBar
from studio.gui.pages.models.text import size_text, source_text, when_text

SUGGESTED_ALIASES = ("production", "staging", "candidate")
FIRST_METRICS = {"classification": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
                 "regression": ("r2", "rmse", "mae")}


class DetailsPanel(QScrollArea):
    changed = Signal(str)  # the ref whose aliases, tags or description changed

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.row: VersionRow | None = None
        self.manifest: Any = None
        self.model_rows: list[VersionRow] = []
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.setWidget(body)

        self.title = label("", "datasetName")
        self.subtitle = wrapped("muted")
        self.origin = wrapped("muted")

        self.description = QLineEdit()
        self.description.setPlaceholderText("Add a one-line description (Enter saves)")
        self.description.setMaxLength(500)
        self.description.editingFinished.connect(self._save_description)

        self.aliases = ChipBar(ALIAS, "none — give one below, e.g. production")
        self.aliases.removed.connect(self._remove_alias)
        self.alias_name = QComboBox()
        self.alias_name.setEditable(True)
        self.alias_name.lineEdit().setPlaceholderText("alias")
        self.alias_name.setMinimumContentsLength(10)
        self.alias_name.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.alias_name.setToolTip("An alias names a version: serve NAME@production and move "
                                   "the alias to change what is served")
        self.alias_target = QComboBox()
        self.alias_target.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.alias_target.setToolTip("The version the alias will point at")
        self.alias_btn = QPushButton("Set")
        self.alias_btn.clicked.connect(self.apply_alias)
        self.alias_name.currentTextChanged.connect(self._update_alias_button)
        self.alias_target.currentIndexChanged.connect(self._update_alias_button)
        self.alias_name.lineEdit().returnPressed.connect(self.apply_alias)
        alias_row = QHBoxLayout()
        alias_row.addWidget(self.alias_name, 1)
        alias_row.addWidget(label("→"))
        alias_row.addWidget(self.alias_target)
        alias_row.addWidget(self.alias_btn)
        self.alias_hint = PlainElided("")
        self.alias_hint.setObjectName("muted")

        self.tags = ChipBar(TAG, "none")
        self.tags.removed.connect(self._remove_tag)
        self.tag_edit = QLineEdit()
        self.tag_edit.setPlaceholderText("key=value (e.g. team=vision)")
        self.tag_edit.returnPressed.connect(self.add_tag)
        self.tag_btn = QPushButton("Add tag")
        self.tag_btn.clicked.connect(self.add_tag)
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.tag_edit, 1)
        tag_row.addWidget(self.tag_btn)

        self.metrics = wrapped()
        self.tensors = wrapped()
        self.files = wrapped()
        self.error = label("")
        self.error.setStyleSheet("color: #d93025;")
        self.error.setWordWrap(True)
        self.error.hide()

        self.archive_btn = QPushButton("Archive")
        self.delete_btn = QPushButton("Delete…")
        actions = QHBoxLayout()
        actions.addWidget(self.archive_btn)
        actions.addWidget(self.delete_btn)
        actions.addStretch(1)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("About", self.description)
        form.addRow("Aliases", self.aliases)
        form.addRow("", alias_row)
        form.addRow("", self.alias_hint)
        form.addRow("Tags", self.tags)
        form.addRow("", tag_row)
        form.addRow("Test", self.metrics)
        form.addRow("Tensors", self.tensors)
        form.addRow("Files", self.files)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.origin)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(actions)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(380)

    # -- showing ----------------------------------------------------------------------------

    def show_version(self, row: VersionRow, version: Any, model_rows: list[VersionRow],
                     model_bytes: int | None) -> None:
        """Fill in ``row`` (``version`` is its full Version, manifest read); a refresh of the
        same version keeps what the person is typing."""
        same = self.row is not None and self.row.ref == row.ref
        self.row, self.model_rows = row, model_rows
        self.manifest = m = version.manifest
        self.title.setText(row.ref + ("  (archived)" if row.archived else ""))
        what = m.kind + (f" of “{m.target}”" if m.target else "")
        self.subtitle.setText(f"{what} · {source_text(row.source)} · {when_text(row.created)}"
                              f" · {size_text(row.size_bytes)} model, "
                              f"{size_text(row.total_bytes)} in all")
        self.origin.setText(origin_text(m, model_bytes, len(model_rows)))
        if not (same and self.description.hasFocus() and self.description.isModified()):
            self.description.setText(row.description or "")
            self.description.setModified(False)
        self.aliases.set_chips(list(row.aliases))
        self.tags.set_chips([f"{k}={v}" for k, v in row.tags.items()])
        self._fill_alias_control(keep=same)
        if not same:
            self.tag_edit.clear()
            self.error.hide()
        self.metrics.setText(collapse_text(m) + metrics_text(m))
        # a compression that lost more than 5 points is flagged wherever it is shown
        self.metrics.setStyleSheet("color: #d93025;" if collapse_text(m) else "")
        self.metrics.setToolTip(tip("\n".join(f"{k}: {v}" for k, v in m.metrics.items()
                                               if not isinstance(v, list | dict))))
        self.tensors.setText(tensor_text(m))
        self.files.setText(", ".join(m.files) or "—")
        self.archive_btn.setText("Unarchive" if row.archived else "Archive")
        self.archive_btn.setToolTip(
            "List it again, and let NAME mean it when it is the newest" if row.archived else
            "Hide it from the list and from NAME (NAME:N and its aliases still work)")

    def set_disk(self, model_bytes: int | None) -> None:
        if self.manifest is not None:
            self.origin.setText(origin_text(self.manifest, model_bytes, len(self.model_rows)))

    def _fill_alias_control(self, keep: bool) -> None:
        assert self.row is not None
        typed = self.alias_name.currentText() if keep else ""
        target = self.alias_target.currentData() if keep else None
        names = sorted({a for r in self.model_rows for a in r.aliases} | set(SUGGESTED_ALIASES))
        for box in (self.alias_name, self.alias_target):
            box.blockSignals(True)
        self.alias_name.clear()
        self.alias_name.addItems(names)
        self.alias_name.setEditText(typed)
        self.alias_target.clear()
        for r in self.model_rows:
            self.alias_target.addItem(f"{r.version}" + (" (this)" if r.version ==
                                                         self.row.version else ""), r.version)
        index = self.alias_target.findData(target if target is not None else self.row.version)
        self.alias_target.setCurrentIndex(max(index, 0))
        for box in (self.alias_name, self.alias_target):
            box.blockSignals(False)
        self._update_alias_button()

    def holder_of(self, alias: str) -> int | None:
        """The version of this model ``alias`` points at now."""
        return next((r.version for r in self.model_rows if alias in r.aliases), None)

    def _update_alias_button(self) -> None:
        alias = self.alias_name.currentText().strip()
        target = self.alias_target.currentData()
        held = self.holder_of(alias) if alias else None
        self.alias_btn.setEnabled(bool(alias) and target is not None and held != target)
        self.alias_btn.setText("Move" if held is not None and held != target else "Set")
        if not alias or self.row is None:
            self.alias_hint.setText("Pick or type an alias and the version it names")
        elif held is None:
            self.alias_hint.setText(f"new: {self.row.name}@{alias} will mean version {target}")
        elif held == target:
            self.alias_hint.setText(f"{self.row.name}@{alias} already means version {held}")
        else:
            self.alias_hint.setText(f"{self.row.name}@{alias} moves from version {held} to "
                                    f"{target} in one step")

    # -- changing ---------------------------------------------------------------------------

    def apply_alias(self) -> None:
        """Point the alias typed at the version picked: set, or moved in one transaction."""
        from studio.core.registry.labels import set_alias

        alias = self.alias_name.currentText().strip()
        target = self.alias_target.currentData()
        if self.row is None or not alias or target is None:
            return
        if self._run(lambda: set_alias(self.ws, self.row.name, alias, str(target))):
            self.alias_name.setEditText("")

    def _remove_alias(self, alias: str) -> None:
        from studio.core.registry.labels import remove_alias

        if self.row is None:
            return
        name = self.row.name
        if ask.confirm(self, "Remove alias", f"Remove {name}@{alias}? Whatever asks for "
                   f"{name}@{alias} (a server, a script) will no longer find it."):
            self._run(lambda: remove_alias(self.ws, name, alias))

    def add_tag(self) -> None:
        from studio.core.registry.labels import parse_tags, set_tags

        text = self.tag_edit.text().strip()
        if self.row is None or not text:
            return
        ref = self.row.ref
        if self._run(lambda: set_tags(self.ws, ref, parse_tags([text]))):
            self.tag_edit.clear()

    def _remove_tag(self, chip: str) -> None:
        from studio.core.registry.labels import set_tags

        if self.row is not None:
            ref, key = self.row.ref, chip.partition("=")[0]
            self._run(lambda: set_tags(self.ws, ref, {key: None}))

    def _save_description(self) -> None:
        from studio.core.registry.labels import set_description

        if self.row is None or not self.description.isModified():
            return
        ref, text = self.row.ref, self.description.text()
        self.description.setModified(False)
        self._run(lambda: set_description(self.ws, ref, text))

    def _run(self, change: Any) -> bool:
        """Apply one change; a refusal is said under the form, in the registry's words."""
        assert self.row is not None
        ref = self.row.ref
        try:
            change()
        except StudioError as exc:
            self.error.setText(str(exc))
            self.error.setToolTip(tip(str(exc)))
            self.error.show()
            return False
        self.error.hide()
        self.changed.emit(ref)
        return True


def collapse_text(m: Any) -> str:
    """A warning before the metrics of a compressed version that collapsed, else ""."""
    c = m.compression
    if c is None or "collapsed" not in (c.details.get("flags") or []):
        return ""
    points = c.details.get("delta_points")
    lost = f"{points:+.1f} points" if isinstance(points, int | float) else "more than 5 points"
    return f"⚠ collapsed: {lost} against {c.parent}, never promoted on its own · "


def origin_text(m: Any, model_bytes: int | None, versions: int) -> str:
    """Where it came from, in a line."""
    if m.compression is not None:
        text = f"{m.compression.method} of {m.compression.parent}"
    elif m.imported is not None:
        text = f"imported {m.imported.format} from {m.imported.source}"
        if m.imported.revision:
            text += f" @ {m.imported.revision}"
    elif m.training is not None:
        text = f"trained: {m.training.family} on {m.training.dataset or '?'}"
    else:
        text = "origin not recorded"
    if model_bytes is not None:
        text += (f" · model “{m.name}”: {versions} version{'s' * (versions != 1)}, "
                 f"{size_text(model_bytes)} on disk")
    return text


def wrapped(name: str | None = None) -> QLabel:
    """Plain text that wraps: a narrow panel shows all of it."""
    widget = label("", name)
    widget.setWordWrap(True)
    widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return widget


def metrics_text(m: Any) -> str:
    """The test metrics a person looks at first (the tooltip has them all)."""
    numbers = {k: v for k, v in m.metrics.items()
               if isinstance(v, float) and not isinstance(v, bool)}
    if not numbers:
        return "not tested here" if m.task is None else "—"
    first = [k for k in FIRST_METRICS.get(m.task, ()) if k in numbers] or list(numbers)[:4]
    # a no-break space keeps a metric's name with its value when the line wraps
    text = " · ".join(f"{k}\u00a0{numbers[k]:.4f}" for k in first)
    return text + (f" (+{len(numbers) - len(first)} more)" if len(numbers) > len(first) else "")


def tensor_text(m: Any) -> str:
    def spec(t: Any) -> str:
        return f"{t.name} {t.datatype} {list(t.shape)}"

    ins = ", ".join(spec(t) for t in m.inputs) or "—"
    outs = ", ".join(spec(t) for t in m.outputs) or "—"
    return f"in: {ins} → out: {outs}"
