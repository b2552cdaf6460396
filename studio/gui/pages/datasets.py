"""Datasets: the imported tables, one shown in a virtual table with its column profile, and
the Train form under it (:mod:`studio.gui.pages.train_form`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.pages.train_form import TrainForm
from studio.gui.widgets.column_profile import ColumnProfile
from studio.gui.widgets.table_model import TableModel, fit_columns, format_block
from studio.gui.worker import run_in_thread

DROP_HINT = (
    "<h2>Drop a dataset anywhere on this window</h2>"
    "<p>CSV, TSV, Parquet, Feather, JSON / JSON Lines, Excel,<br>"
    "a folder of images with one sub-folder per class, or a zip of one.<br>"
    "Or choose a file, or start with the bundled Palmer penguins sample.</p>"
)
THUMBNAILS = 240
THUMB_PX = 96


class DatasetsPage(QWidget):
    import_requested = Signal()  # the window owns the file dialog and the import job
    sample_requested = Signal()
    train_requested = Signal(dict)  # TrainSpec fields chosen here
    tune_requested = Signal(dict)  # the same, for a search
    message = Signal(str)
    changed = Signal()  # renamed or deleted: other pages refresh

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.current: Any = None  # DatasetInfo of the shown dataset
        self._loading: Any = None  # the DatasetInfo being read in the background
        self.profile: list[dict[str, Any]] = []
        self.data: Any = None  # the shown dataset as an Arrow table
        self._profile_job: JobBridge | None = None
        self.form = TrainForm(ws)
        self.form.train_requested.connect(self.train_requested)
        self.form.tune_requested.connect(self.tune_requested)
        self.form.message.connect(self.message)
        self.form.target_changed.connect(lambda name: self.columns.select(name))
        self.train_btn = self.form.train_btn  # the page's main action

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
        header.addWidget(self.form.recipe_btn)
        header.addWidget(self.form.advanced_btn)
        header.addWidget(self.form.tune_btn)
        header.addWidget(self.form.train_btn)

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
        layout.addWidget(self.form)
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
        self.form.renamed(now)

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
        self.form.train_btn.setEnabled(False)
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
        self.current, self.data, self.profile = info, table, []
        self.model.set_table(table, first_block=first_block)
        fit_columns(self.table)
        self.shape_label.setText(f"{info.rows:,} rows × {len(info.columns)} columns")
        self.description.setText(info.description)
        images = thumbs is not None
        self.form.set_dataset(info, table, images)
        self.view.setCurrentIndex(1 if images else 0)
        if images:
            self._show_thumbnails(thumbs)
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
            self.form.split_label.setText("")
            self.message.emit(f"Could not profile {info.name}: {final.error}")
            return
        profile = cached_profile(self.ws, info)
        if profile is not None:
            self._on_profile((info, profile))

    def _on_profile(self, loaded: tuple[Any, Any]) -> None:
        loaded_info, profile = loaded
        if not self._showing(loaded_info):
            return
        info = self.current  # its latest name and choices (a rename may have come since)
        self.profile = profile
        self.model.set_kinds({c["name"]: c["kind"] for c in profile})
        target = self.form.set_profile(info, profile)
        self.columns.set_profile(profile, info.rows, select=target or None)

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

    def _scroll_to_column(self, name: str) -> None:
        if self.data is not None and name in self.data.column_names:
            self.table.scrollTo(self.model.index(0, self.data.column_names.index(name)))

    def set_target(self, name: str) -> None:
        self.form.set_target(name)

    def set_busy(self, busy: bool) -> None:
        self.form.set_busy(busy)


def _thumbnails(ws: Workspace, frame: Any) -> list[tuple[str, str, QImage | None]]:
    """A few pictures per class, read verified and scaled down: file work and hashing, done
    in the loader's thread (a QImage may be made there; the pixmap is the GUI thread's)."""
    from studio.gui.widgets.thumbnails import thumbnail

    per_class = max(1, THUMBNAILS // max(1, frame["label"].nunique()))
    return [(str(label), row.path, thumbnail(ws, row.digest, THUMB_PX))
            for label, group in frame.groupby("label", sort=True)
            for row in group.head(per_class).itertuples()]
