"""Datasets: the imported tables, one shown in a virtual table with its column profile, and
where a training run is set up (target, task, split, epochs)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.training.spec import TASKS as SPEC_TASKS
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.widgets.column_profile import ColumnProfile
from studio.gui.widgets.table_model import TableModel, fit_columns, format_block
from studio.gui.worker import run_in_thread

DROP_HINT = (
    "<h2>Drop a dataset anywhere on this window</h2>"
    "<p>CSV, TSV, Parquet, Feather, JSON / JSON Lines, Excel,<br>"
    "a folder of images with one sub-folder per class, or a zip of one.<br>"
    "Or choose a file, or start with the bundled Palmer penguins sample.</p>"
)
TASKS = [t for t in SPEC_TASKS if t != "auto"]
THUMBNAILS = 240
THUMB_PX = 96


class DatasetsPage(QWidget):
    import_requested = Signal()  # the window owns the file dialog and the import job
    sample_requested = Signal()
    train_requested = Signal(dict)  # TrainSpec fields chosen here
    message = Signal(str)
    changed = Signal()  # renamed or deleted: other pages refresh

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.current: Any = None  # DatasetInfo of the shown dataset
        self._loading: Any = None  # the DatasetInfo being read in the background
        self.profile: list[dict[str, Any]] = []
        self.data: Any = None  # the shown dataset as an Arrow table
        self._busy = False
        self._profile_job: JobBridge | None = None
        self._split_key: Any = None
        self.recipe_options: dict[str, Any] = {}  # the person's preprocessing choices

        self.list = QListWidget()
        self.list.setObjectName("datasetList")
        self.list.currentItemChanged.connect(self._on_select)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        import_btn = QPushButton("Import…")
        import_btn.clicked.connect(self.import_requested)
        sample_btn = QPushButton("Open sample")
        sample_btn.setToolTip("Import the bundled Palmer penguins dataset")
        sample_btn.clicked.connect(self.sample_requested)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Datasets")
        title.setObjectName("pageTitle")
        left_layout.addWidget(title)
        left_layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(import_btn)
        buttons.addWidget(sample_btn)
        left_layout.addLayout(buttons)

        self.right = QStackedWidget()
        self.empty = self._empty_state()
        self.right.addWidget(self.empty)
        self.right.addWidget(self._detail())

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.right)
        split.setStretchFactor(1, 1)
        split.setSizes([200, 1000])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    def _empty_state(self) -> QWidget:
        hint = QLabel(DROP_HINT)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        choose = QPushButton("Choose a file…")
        choose.clicked.connect(self.import_requested)
        self.empty_sample_btn = QPushButton("Open the penguins sample")
        self.empty_sample_btn.setObjectName("primary")
        self.empty_sample_btn.clicked.connect(self.sample_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(choose)
        buttons.addWidget(self.empty_sample_btn)
        buttons.addStretch(1)
        box = QFrame()  # a frame paints the stylesheet's dashed border; a bare widget not
        box.setObjectName("dropHint")
        layout = QVBoxLayout(box)
        layout.addStretch(1)
        layout.addWidget(hint)
        layout.addLayout(buttons)
        layout.addStretch(1)
        return box

    def _detail(self) -> QWidget:
        self.name_label = QLabel()
        self.name_label.setObjectName("datasetName")
        self.shape_label = QLabel()
        self.shape_label.setObjectName("muted")
        self.description = QLabel()
        self.description.setObjectName("muted")
        # a long description must not widen the window
        self.description.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        header = QHBoxLayout()
        header.addWidget(self.name_label)
        header.addWidget(self.shape_label)
        header.addWidget(self.description, 1)

        self.target = QComboBox()
        self.target.setMinimumWidth(140)
        self.target.setPlaceholderText("choose a column…")
        self.target.currentTextChanged.connect(self._on_target)
        self.target.activated.connect(self._on_chosen)
        self.target_note = _note("")
        self.task = QComboBox()
        self.task.addItems(TASKS)
        self.task.activated.connect(self._on_chosen)
        self.task.currentTextChanged.connect(lambda _t: self._propose_model())
        self.ratios = [QSpinBox() for _ in range(3)]
        for box, value, tip in zip(self.ratios, (70, 15, 15),
                                   ("training", "validation", "test"), strict=True):
            box.setRange(0, 100)
            box.setValue(value)
            box.setSuffix("%")
            box.setToolTip(f"share of rows for {tip}")
            box.valueChanged.connect(self._update_split)
            box.setMaximumWidth(68)  # "100%" fits; the model's note needs the room more
        self.model_name = QLineEdit()
        self.model_name.setMinimumWidth(120)
        self.model_name.setToolTip("The model this run registers a version of")
        self.model_name.textEdited.connect(self._on_model_edited)
        self.model_note = _note("")
        self._model_edited = False
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(40)
        self.epochs.setMaximumWidth(76)
        self.recipe_btn = QPushButton("Preprocessing…")
        self.recipe_btn.setToolTip("Choose how each column is filled, encoded and scaled")
        self.recipe_btn.clicked.connect(self.edit_recipe)
        self.train_btn = QPushButton("Train ▶")
        self.train_btn.setObjectName("primary")
        self.train_btn.clicked.connect(self._on_train)
        # Short rows rather than one long one: the page must fit a 1024-pixel screen.
        header.addWidget(self.recipe_btn)
        header.addWidget(self.train_btn)
        question = _row("Target", self.target, (self.target_note, 1), "Task", self.task, 8,
                        "Epochs", self.epochs)
        run = _row("Model", self.model_name, (self.model_note, 1), "Split", *self.ratios)
        self.split_label = QLabel()
        self.split_label.setObjectName("muted")
        self.split_label.setWordWrap(True)

        self.model = TableModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.thumbs.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbs.setSpacing(6)
        self.view = QStackedWidget()
        self.view.addWidget(self.table)
        self.view.addWidget(self.thumbs)
        self.columns = ColumnProfile()
        self.columns.column_selected.connect(self._scroll_to_column)
        body = QSplitter()
        body.addWidget(self.view)
        body.addWidget(self.columns)
        body.setStretchFactor(0, 1)
        body.setSizes([700, 330])

        detail = QWidget()
        layout = QVBoxLayout(detail)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addLayout(question)
        layout.addLayout(run)
        layout.addWidget(self.split_label)
        layout.addWidget(body, 1)
        return detail

    # -- the list ---------------------------------------------------------------------------

    def sync(self) -> None:
        """The list again after another process changed the workspace. The dataset on
        screen (or being opened) is read again only when its content changed; renamed
        elsewhere, it is followed by its content; deleted, the page moves on."""
        from studio.core.datasets.catalog import list_datasets

        infos = list_datasets(self.ws)
        shown = self._loading or self.current
        if shown is None:
            if infos:
                self.refresh()
            return
        now = next((i for i in infos if i.name == shown.name), None) or next(
            (i for i in infos if i.digest == shown.digest), None)
        if now is None or now.digest != shown.digest:
            self.refresh(select=now.name if now else None)
            return
        self._fill_list(infos, now.name)
        if self._loading is not self.current:
            return  # it is still being opened: that load shows it
        self.current = self._loading = now  # its description or name may have changed
        self.name_label.setText(now.name)
        self.description.setText(now.description)
        self._propose_model()

    def _fill_list(self, infos: list[Any], keep: str | None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for info in infos:
            item = QListWidgetItem(f"{info.name}\n{info.rows:,} rows · {len(info.columns)} cols")
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(info.description or info.source)
            self.list.addItem(item)
            if info.name == keep:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(self.list.count() - 1)
        self.list.blockSignals(False)

    def refresh(self, select: str | None = None) -> None:
        from studio.core.datasets.catalog import list_datasets

        keep = select or (self.current.name if self.current else None)
        self._fill_list(list_datasets(self.ws), keep)
        self._on_select(self.list.currentItem(), None)

    def show_dataset(self, name: str) -> None:
        self.refresh(select=name)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename(name))
        menu.addAction("Describe…", lambda: self.describe(name))
        menu.addAction("Export as CSV…", lambda: self.export(name))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.delete(name))
        menu.exec(self.list.mapToGlobal(pos))

    def rename(self, name: str, new_name: str | None = None) -> None:
        from studio.core.datasets.catalog import rename_dataset
        from studio.core.errors import StudioError

        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename dataset", "New name:", text=name)
            if not ok:
                return
        try:
            info = rename_dataset(self.ws, name, new_name.strip())
        except StudioError as exc:
            self.message.emit(str(exc))
            return
        self.current = None
        self.refresh(select=info.name)
        self.changed.emit()

    def describe(self, name: str) -> None:
        from studio.core.datasets.catalog import describe_dataset, get_dataset

        text, ok = QInputDialog.getMultiLineText(self, "Describe dataset", f"{name}:",
                                                 get_dataset(self.ws, name).description)
        if ok:
            describe_dataset(self.ws, name, text)
            self.refresh(select=name)

    def export(self, name: str, dest: Path | None = None) -> None:
        from studio.core.datasets.catalog import export_csv
        from studio.core.errors import StudioError

        if dest is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export as CSV",
                                                    str(Path.home() / f"{name}.csv"),
                                                    "CSV (*.csv)")
            if not chosen:
                return
            dest = Path(chosen)
        try:
            export_csv(self.ws, name, dest)
        except StudioError as exc:
            self.message.emit(str(exc))

    def delete(self, name: str, confirm: bool = True) -> None:
        from studio.core.datasets.catalog import delete_dataset

        if confirm and QMessageBox.question(
                self, "Delete dataset",
                f"Delete “{name}”? Models trained on it keep working.") \
                != QMessageBox.StandardButton.Yes:
            return
        try:
            delete_dataset(self.ws, name)
        except StudioError as exc:
            QMessageBox.warning(self, "Delete dataset", str(exc))
            return
        self.current = None
        self.refresh()
        self.changed.emit()

    # -- one dataset ------------------------------------------------------------------------

    def _on_select(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is None:
            self.current = self._loading = None
            self.right.setCurrentWidget(self.empty)
            return
        from studio.core.datasets.catalog import get_dataset, load_table

        info = get_dataset(self.ws, item.data(Qt.ItemDataRole.UserRole))
        self._loading = info
        self.name_label.setText(info.name)
        self.shape_label.setText("loading…")
        self.train_btn.setEnabled(False)
        self.right.setCurrentIndex(1)
        # Reading and verifying the snapshot is file work: never on the GUI thread. The table
        # shows first; the profile (computed once per snapshot, then cached) follows.
        from studio.core.datasets.prepare import is_image_dataset

        def load() -> tuple[Any, Any, Any, Any]:
            table = load_table(self.ws, info)
            thumbs = None
            if is_image_dataset(table.column_names):
                thumbs = _thumbnails(self.ws, table.select(
                    ["path", "label", "digest", "width", "height"]).to_pandas())
            return info, table, format_block(table, 0), thumbs

        run_in_thread(load, self._on_table, lambda m: self._on_load_failed(info, m))

    def _on_load_failed(self, info: Any, message: str) -> None:
        if info is not self._loading:
            return  # about a dataset the person has left
        self.shape_label.setText("could not be read")
        self.message.emit(f"Could not open the dataset: {message}")

    def _on_table(self, loaded: tuple[Any, Any, Any]) -> None:

        info, table, first_block, thumbs = loaded
        if info is not self._loading:
            return  # another dataset (or this one again) was asked for since
        info = self._loading = self._latest(info)
        if self.current is None or self.current.name != info.name:
            self._set_recipe({})  # choices belong to one dataset
            self._model_edited = False
            for widget in (self.model_name, self.model_note, self.target_note):
                widget.clear()
        self.current, self.data, self.profile = info, table, []
        self.model.set_table(table, first_block=first_block)
        fit_columns(self.table)
        self.shape_label.setText(f"{info.rows:,} rows × {len(info.columns)} columns")
        self.description.setText(info.description)
        self.split_label.setText("profiling the columns…")
        images = thumbs is not None
        self.view.setCurrentIndex(1 if images else 0)
        if images:
            self._show_thumbnails(thumbs)
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(info.column_names)
        self.target.blockSignals(False)
        # The rest waits for the next turn of the event loop: the table paints first.
        QTimer.singleShot(0, self, lambda: self._profile(info))

    def _profile(self, info: Any) -> None:
        from studio.core.datasets.catalog import cached_profile

        if not self._showing(info):
            return
        cached = cached_profile(self.ws, info)
        if cached is not None:
            self._on_profile((info, cached))
            return
        # Profiling a big table is seconds of pandas work holding the GIL: a subprocess
        # keeps the GUI thread free; the result lands in the profile cache.
        # by content: a rename elsewhere while it works changes nothing it needs
        job = JobBridge(self.ws, "profile", {"dataset": info.name, "digest": info.digest},
                        self)
        job.finished.connect(lambda final: self._on_profiled(info, final))
        self._profile_job = job
        job.start()

    def _latest(self, info: Any) -> Any:
        """``info`` as the database has it now: its description or choices changed, or the
        dataset renamed elsewhere while it loaded (found by its snapshot)."""
        from studio.core.datasets.catalog import dataset_by_digest, get_dataset

        for find in (lambda: get_dataset(self.ws, info.name),
                     lambda: dataset_by_digest(self.ws, info.digest)):
            try:
                found = find()
            except StudioError:
                continue
            if found.digest == info.digest:  # the name may now hold other content
                return found
        return info  # gone: the workspace watch moves the page on

    def _showing(self, info: Any) -> bool:
        """Whether ``info``'s snapshot is the one on screen (by content: names change)."""
        return self.current is not None and info.digest == self.current.digest

    def _on_profiled(self, info: Any, final: Any) -> None:
        from studio.core.datasets.catalog import cached_profile
        from studio.core.events import Done

        self._profile_job = None
        if not self._showing(info):
            return  # the person has moved on (or deleted it)
        if not isinstance(final, Done):
            self.split_label.setText("")
            self.message.emit(f"Could not profile {info.name}: {final.error}")
            return
        profile = cached_profile(self.ws, info)
        if profile is not None:
            self._on_profile((info, profile))

    def _on_profile(self, loaded: tuple[Any, Any]) -> None:
        from studio.core.datasets.profile import suggest_target

        loaded_info, profile = loaded
        if not self._showing(loaded_info):
            return
        info = self.current  # its latest name and choices (a rename may have come since)
        self.profile = profile
        self.model.set_kinds({c["name"]: c["kind"] for c in profile})
        images = self.view.currentWidget() is self.thumbs
        chosen = info.choices.get("target")
        if images:  # the label is the one thing an image dataset can be trained to predict
            target, note = "label", ""
        elif chosen in info.column_names:
            target, note = chosen, "chosen last time"
        else:
            found = suggest_target(profile)
            target, note = (found.name, f"suggested: {found.reason}") if found else ("", "")
        self.columns.set_profile(profile, info.rows, select=target or None)
        self.target.blockSignals(True)
        if images:
            self.target.clear()
            self.target.addItem("label")
        self.target.setCurrentIndex(self.target.findText(target) if target else -1)
        self.target.blockSignals(False)
        self.target_note.setText(note)
        if not target:
            self.split_label.setText("Which column should the model predict? Choose the "
                                     "target.")
            self.train_btn.setEnabled(False)
            return
        remembered_task = info.choices.get("task") if target == chosen else None
        QTimer.singleShot(0, self, lambda: self._on_target(target, remembered_task))

    def _show_thumbnails(self, thumbs: list[tuple[str, str, QImage | None]]) -> None:
        self.thumbs.clear()
        for label, path, image in thumbs:
            if image is None:
                item = QListWidgetItem(f"{label}\n(damaged)")
                item.setToolTip(f"{path}: its stored copy is damaged or missing; "
                                "`studio verify` lists every such file")
            else:
                item = QListWidgetItem(QPixmap.fromImage(image), label)
                item.setToolTip(path)
            self.thumbs.addItem(item)

    def _on_target(self, name: str, task: str | None = None) -> None:
        if self.current is None or not name or not self.profile:
            return
        from studio.core.datasets.profile import suggest_task

        col = next(c for c in self.profile if c["name"] == name)
        images = self.view.currentWidget() is self.thumbs
        self.task.blockSignals(True)
        self.task.setCurrentText(task if task in TASKS else "image-classification" if images
                                 else suggest_task(col, self.profile))
        self.task.blockSignals(False)
        self.columns.select(name)
        self._propose_model()
        self._update_split()

    def _on_chosen(self, _index: int) -> None:
        """The person picked a target or task: it is kept for the next time."""
        from studio.core.datasets.catalog import remember_choices

        if self.current is None or not self.target.currentText():
            return
        self.target_note.setText("")
        remember_choices(self.ws, self.current.name, self.target.currentText(),
                         self.task.currentText())

    def _on_model_edited(self, _text: str) -> None:
        self._model_edited = True
        self._propose_model()

    def _propose_model(self) -> None:
        """The model this run registers under: the dataset's, or a new name when that model's
        latest version answers another question. A name the person typed is kept."""
        from studio.core.datasets.catalog import NAME_RE
        from studio.core.registry import latest_version, propose_model_name, same_question

        if self.current is None or not self.target.currentText():
            return
        target, task = self.target.currentText(), self.task.currentText()
        if not self._model_edited:
            self.model_name.setText(propose_model_name(self.ws, self.current.name, target,
                                                       task))
        name = self.model_name.text().strip()
        latest = latest_version(self.ws, name) if name else None
        if not NAME_RE.match(name):
            note = "⚠ not a valid name"
            tip = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        elif latest is None:
            other = latest_version(self.ws, self.current.name)
            note, tip = "a new model", f"registers {name}:1"
            if other is not None and not same_question(other, target, task):
                note += f": {other.ref} predicts “{other.manifest.get('target')}”"
        elif not same_question(latest, target, task):
            note = f"⚠ {latest.ref} predicts “{latest.manifest.get('target')}” ({latest.kind})"
            tip = (f"{name} would change meaning: its latest version predicts "
                   f"{latest.manifest.get('target')!r}. Another name keeps them apart.")
        else:
            note = f"adds version {latest.version + 1}"
            tip = f"{latest.ref} is the latest version"
        self.model_note.setText(note)
        self.model_note.setToolTip(f"{note}\n{tip}")

    def _scroll_to_column(self, name: str) -> None:
        if self.data is not None and name in self.data.column_names:
            self.table.scrollTo(self.model.index(0, self.data.column_names.index(name)))

    def split_ratios(self) -> list[float]:
        return [box.value() / 100 for box in self.ratios]

    def _update_split(self) -> None:
        """Rows per split, and per class for classification, as training will cut them."""
        if self.data is None or not self.profile or not self.target.currentText():
            return
        ratios = self.split_ratios()
        if abs(sum(ratios) - 1) > 1e-9:
            self._split_error(f"The split adds up to {sum(ratios):.0%}: it must be 100%.")
            return
        from studio.core.datasets.split import split_preview

        data, name = self.data, self.target.currentText()
        classify = self.task.currentText().endswith("classification")
        key = (self.current.name, name, classify, tuple(ratios))
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

    def edit_recipe(self) -> Any:
        """Open the preprocessing dialog; returns it (shown modeless) for tests and callers."""
        from studio.gui.pages.recipe_dialog import RecipeDialog

        if self.current is None or not self.profile:
            return None
        dialog = RecipeDialog(self.ws, self.current, self.profile, self.target.currentText(),
                              self.task.currentText(), self.split_ratios(),
                              self.recipe_options, self)
        dialog.accepted.connect(lambda: self._set_recipe(dialog.options()))
        dialog.open()
        return dialog

    def _set_recipe(self, options: dict[str, Any]) -> None:
        self.recipe_options = options
        n = len(options.get("columns", {}))
        self.recipe_btn.setText(f"Preprocessing ({n})…" if n else "Preprocessing…")

    def _on_train(self) -> None:
        if self.current is not None and self.target.currentText():
            self.train_requested.emit({
                "dataset": self.current.name, "target": self.target.currentText(),
                "task": self.task.currentText(), "epochs": self.epochs.value(),
                "split": self.split_ratios(), "preprocessing": self.recipe_options,
                "model": self.model_name.text().strip() or None})

    def set_target(self, name: str) -> None:
        self.target.setCurrentText(name)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.train_btn.setEnabled(not busy and self.current is not None
                                  and bool(self.target.currentText()))
        if not busy:
            self._propose_model()  # a version was added: the next run's number changes


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



def _thumbnails(ws: Workspace, frame: Any) -> list[tuple[str, str, QImage | None]]:
    """A few pictures per class, read verified and scaled down: file work and hashing, done
    in the loader's thread (a QImage may be made there; the pixmap is the GUI thread's)."""
    from studio.gui.widgets.thumbnails import thumbnail

    per_class = max(1, THUMBNAILS // max(1, frame["label"].nunique()))
    return [(str(label), row.path, thumbnail(ws, row.digest, THUMB_PX))
            for label, group in frame.groupby("label", sort=True)
            for row in group.head(per_class).itertuples()]
