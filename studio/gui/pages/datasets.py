"""Datasets: the imported tables, one shown in a virtual table, and where training starts."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.widgets.frame_model import FrameModel
from studio.gui.worker import run_in_thread

DROP_HINT = (
    "<h2>Drop a dataset anywhere on this window</h2>"
    "<p>CSV, TSV, Parquet, Feather, JSON / JSON Lines or Excel.<br>"
    "Or use <b>Import…</b>, or open the bundled <b>penguins</b> sample.</p>"
)


class DatasetsPage(QWidget):
    import_requested = Signal()  # the window owns the file dialog and the import job
    sample_requested = Signal()
    train_requested = Signal(str, str, int)  # dataset, target, epochs
    message = Signal(str)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.current: Any = None  # DatasetInfo of the shown dataset
        self._loading: Any = None  # the DatasetInfo being read in the background
        self.profile: list[dict[str, Any]] = []
        self._busy = False

        self.list = QListWidget()
        self.list.setObjectName("datasetList")
        self.list.currentItemChanged.connect(self._on_select)
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

        self.name_label = QLabel()
        self.name_label.setObjectName("datasetName")
        self.shape_label = QLabel()
        self.shape_label.setObjectName("muted")
        self.target = QComboBox()
        self.target.setMinimumWidth(160)
        self.target.currentTextChanged.connect(self._on_target)
        self.task_label = QLabel()
        self.task_label.setObjectName("muted")
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 10_000)
        self.epochs.setValue(40)
        self.train_btn = QPushButton("Train ▶")
        self.train_btn.setObjectName("primary")
        self.train_btn.clicked.connect(self._on_train)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Target"))
        controls.addWidget(self.target)
        controls.addWidget(self.task_label)
        controls.addStretch(1)
        controls.addWidget(QLabel("Epochs"))
        controls.addWidget(self.epochs)
        controls.addWidget(self.train_btn)

        self.model = FrameModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setStretchLastSection(True)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.name_label)
        header.addWidget(self.shape_label)
        header.addStretch(1)
        detail_layout.addLayout(header)
        detail_layout.addLayout(controls)
        detail_layout.addWidget(self.table, 1)

        self.empty = QLabel(DROP_HINT)
        self.empty.setObjectName("dropHint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.right = QStackedWidget()
        self.right.addWidget(self.empty)
        self.right.addWidget(detail)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.right)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    def refresh(self, select: str | None = None) -> None:
        from studio.core.datasets.catalog import list_datasets

        keep = select or (self.current.name if self.current else None)
        self.list.blockSignals(True)
        self.list.clear()
        for info in list_datasets(self.ws):
            item = QListWidgetItem(f"{info.name}\n{info.rows:,} rows · {len(info.columns)} cols")
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            self.list.addItem(item)
            if info.name == keep:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(self.list.count() - 1)
        self._on_select(self.list.currentItem(), None)

    def show_dataset(self, name: str) -> None:
        self.refresh(select=name)

    def _on_select(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is None:
            self.current = self._loading = None
            self.right.setCurrentWidget(self.empty)
            return
        from studio.core.datasets.catalog import dataset_profile, get_dataset, load_frame

        info = get_dataset(self.ws, item.data(Qt.ItemDataRole.UserRole))
        self._loading = info
        self.name_label.setText(info.name)
        self.shape_label.setText("loading…")
        self.train_btn.setEnabled(False)
        self.right.setCurrentIndex(1)
        # Reading and verifying the snapshot is file work: never on the GUI thread.
        def load() -> tuple[Any, Any, Any]:
            frame = load_frame(self.ws, info)
            return info, frame, dataset_profile(self.ws, info, frame)

        run_in_thread(load, self._on_loaded, self._on_load_failed)

    def _on_load_failed(self, message: str) -> None:
        self.shape_label.setText("could not be read")
        self.message.emit(f"Could not open the dataset: {message}")

    def _on_loaded(self, loaded: tuple[Any, Any, Any]) -> None:
        from studio.core.datasets.profile import suggest_target

        info, frame, profile = loaded
        if self._loading is None or info.name != self._loading.name:
            return  # the person has already picked another dataset
        self.current = info
        self.profile = profile
        self.train_btn.setEnabled(not self._busy)
        kinds = {c["name"]: c["kind"] for c in profile}
        self.model.set_frame(frame, kinds)
        self.table.resizeColumnsToContents()
        self.name_label.setText(info.name)
        self.shape_label.setText(f"{info.rows:,} rows × {len(info.columns)} columns")
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems(info.column_names)
        self.target.setCurrentText(suggest_target(profile))
        self.target.blockSignals(False)
        self._on_target(self.target.currentText())
        self.right.setCurrentIndex(1)

    def _on_target(self, name: str) -> None:
        if self.current is None or not name:
            return
        from studio.core.datasets.profile import suggest_task

        col = next(c for c in self.profile if c["name"] == name)
        task = suggest_task(col)
        if task == "classification":
            task += f" · {col['unique']} classes"
        self.task_label.setText(task)

    def set_target(self, name: str) -> None:
        self.target.setCurrentText(name)

    def _on_train(self) -> None:
        if self.current is not None:
            self.train_requested.emit(self.current.name, self.target.currentText(),
                                      self.epochs.value())

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.train_btn.setEnabled(not busy and self.current is not None)
