"""The main window: a sidebar of pages, a status bar, and drop-anywhere import."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.events import Done, Event, Failed, Progress
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.pages.compress.view import CompressPage
from studio.gui.pages.datasets import DatasetsPage
from studio.gui.pages.models.view import ModelsPage
from studio.gui.pages.runs.view import RunsPage
from studio.gui.pages.serving import ServingPage
from studio.gui.pages.training import TrainingPage
from studio.gui.widgets.elided_label import ElidedLabel

PAGES = ("Datasets", "Training", "Runs", "Models", "Compress", "Serving")
SIDEBAR_WIDE, SIDEBAR_COMPACT, COMPACT_BELOW = 180, 72, 1180
TITLE_BAR, SCREEN_MARGIN = 32, 8  # what a window manager adds above, and a little air
ICONS = ("▦", "◔", "☰", "◆", "◈", "▶")
FILE_FILTER = ("Data files (*.csv *.tsv *.tab *.txt *.parquet *.pq *.feather *.arrow *.json "
               "*.jsonl *.ndjson *.xlsx *.xlsm *.zip);;All files (*)")


class MainWindow(QMainWindow):
    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws
        self.setWindowTitle("Model Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 800)  # fit_to_screen() shrinks it on a smaller screen
        self.pending_imports: list[Path] = []
        self._importing = False  # a file's import, or its choice of sheet, is under way
        self._import_cancelled = False
        self.import_job: JobBridge | None = None
        self.tuning: Any = None  # the Tune window, once opened

        self.nav = QListWidget()
        self.nav.setObjectName("sidebar")
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for name in PAGES:
            self.nav.addItem(name)
        self.brand = brand = QLabel("Model Studio")
        brand.setObjectName("brand")
        # nor does its text hold the window wide: below 1180 px the sidebar folds anyway
        brand.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._compact: bool | None = None
        self.side = side = QWidget()
        side.setObjectName("sidebar")
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.setSpacing(0)
        side_layout.addWidget(brand)
        side_layout.addWidget(self.nav, 1)
        self._set_compact(False)

        self.datasets = DatasetsPage(ws)
        self.training = TrainingPage(ws)
        self.runs = RunsPage(ws)
        self.models = ModelsPage(ws)
        self.compress = CompressPage(ws)
        self.serving = ServingPage(ws)
        self.stack = QStackedWidget()
        for page in (self.datasets, self.training, self.runs, self.models, self.compress,
                     self.serving):
            self.stack.addWidget(page)
        self._status_error = False
        self.nav.currentRowChanged.connect(self._on_page)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(side)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        # a long message is elided, never a reason for the window to widen or the bar to grow
        self.status_text = ElidedLabel()
        self.job_progress = QProgressBar()
        self.job_progress.setMaximumWidth(260)
        self.job_progress.hide()
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop this import; nothing of it is kept")
        self.cancel_btn.clicked.connect(self.cancel_import)
        self.cancel_btn.hide()
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.job_progress)
        self.statusBar().addPermanentWidget(self.cancel_btn)
        self.statusBar().addPermanentWidget(QLabel(f"Workspace: {ws.root}"))

        self.datasets.import_requested.connect(self.choose_files)
        self.datasets.sample_requested.connect(self.import_sample)
        self.datasets.train_requested.connect(self.train)
        self.datasets.tune_requested.connect(self.tune)
        self.datasets.message.connect(self.error)
        self.datasets.changed.connect(lambda: self.models.refresh())
        self._menus()
        self.training.finished.connect(self._on_trained)
        self.training.message.connect(self.error)
        self.training.registered.connect(self._on_registered)
        self.runs.version_requested.connect(self.open_version)
        self.runs.resume_requested.connect(self.train)
        self.runs.notice.connect(self.status)
        self.models.serve_requested.connect(self.serve)
        self.models.compress_requested.connect(self.open_compress)
        self.models.notice.connect(self.status)
        self.models.dataset_requested.connect(self.open_dataset)
        self.compress.notice.connect(self.status)
        self.compress.registered.connect(self._on_compressed)
        self.serving.message.connect(self.error)
        self.serving.notice.connect(self.status)
        self.nav.setCurrentRow(0)

    def _set_compact(self, compact: bool) -> None:
        """Icons only on a narrow window: the pages need the width more than the labels."""
        if compact == self._compact:
            return
        self._compact = compact
        # Wide, it may still shrink: the window's minimum width is the compact one's.
        self.nav.setMinimumWidth(SIDEBAR_COMPACT)
        self.nav.setMaximumWidth(SIDEBAR_COMPACT if compact else SIDEBAR_WIDE)
        # the brand above the list must not hold the width
        self.side.setMaximumWidth(SIDEBAR_COMPACT if compact else SIDEBAR_WIDE)
        self.brand.setText("MS" if compact else "Model Studio")
        for i, (icon, name) in enumerate(zip(ICONS, PAGES, strict=True)):
            item = self.nav.item(i)
            item.setText(icon if compact else f"{icon}   {name}")
            item.setToolTip(f"{name} (Ctrl+{i + 1})")

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._set_compact(event.size().width() < COMPACT_BELOW)
        super().resizeEvent(event)

    def fit_to_screen(self) -> None:
        """Open at 1280×800, or smaller where the screen's free area is smaller, centred, with
        room for the title bar: a window taller than the screen hides its status bar."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        width = min(1280, free.width() - 2 * SCREEN_MARGIN)
        height = min(800, free.height() - TITLE_BAR - 2 * SCREEN_MARGIN)
        self._set_compact(width < COMPACT_BELOW)  # before the minimum size is asked
        self.resize(max(width, self.minimumSizeHint().width()),
                    max(height, self.minimumSizeHint().height()))
        self.move(free.x() + max(0, (free.width() - self.width()) // 2),
                  free.y() + max(0, (free.height() - self.height() - TITLE_BAR) // 2))

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        act = file.addAction("&Import files…", self.choose_files)
        act.setShortcut(QKeySequence.StandardKey.Open)
        file.addAction("Import image &folder…", self.choose_folder)
        file.addAction("Open &sample (penguins)", self.import_sample)
        file.addSeparator()
        act = file.addAction("&Quit", self.close)
        act.setShortcut(QKeySequence.StandardKey.Quit)
        go = self.menuBar().addMenu("&Go")
        for i, name in enumerate(PAGES):
            act = go.addAction(name, lambda i=i: self.nav.setCurrentRow(i))
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))

    def load(self) -> None:
        """Read the workspace after the window is on screen, so start-up stays quick."""
        from studio.gui.worker import run_in_thread
        from studio.jobs.records import interruption_message, reap_stale, unnoticed_interruptions

        # pyqtgraph takes ~0.4 s to import: do it now, off the GUI thread, so the first chart
        # (a column profile, a training curve) does not freeze the window.
        run_in_thread(lambda: importlib.import_module("pyqtgraph"), self._ignore, self._ignore)
        from studio.gui.workspace_watch import WorkspaceWatch

        reaped = reap_stale(self.ws)
        told = [interruption_message(r) for r in unnoticed_interruptions(self.ws)]
        self.watch = WorkspaceWatch(self.ws, self)
        self.watch.datasets_changed.connect(self.datasets.sync)
        self.watch.models_changed.connect(self._on_models_changed)
        self.watch.start()
        self.datasets.refresh()
        self.models.refresh()
        self.compress.refresh()
        self.serving.refresh()
        if told:  # a run the app (or a terminal) lost before it ended
            self.status("\n".join(told))
        else:
            self.status(f"{reaped} interrupted job(s) marked failed" if reaped else "Ready")

    def _ignore(self, _result: object) -> None:
        pass

    def go(self, page: QWidget) -> None:
        self.nav.setCurrentRow(self.stack.indexOf(page))

    def status(self, text: str, error: bool = False) -> None:
        """One line, whatever the text: the full message is in the tooltip (and, for an
        error, in its dialog). An error is cleared when the person moves to another page."""
        lines = text.strip().splitlines() or [""]
        self.status_text.setText(lines[0] + (" …" if len(lines) > 1 else ""))
        self.status_text.setToolTip(text)
        self.status_text.setStyleSheet("color: #d93025;" if error else "")
        self._status_error = error

    def error(self, text: str) -> None:
        self.status(text, error=True)
        QMessageBox.warning(self, "Model Studio", text)

    def _on_page(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        if self._status_error:
            self.status("Ready")

    # -- import -----------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.import_paths(paths)

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import datasets", str(Path.home()),
                                                FILE_FILTER)
        self.import_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images (one "
                                                  "sub-folder per class)", str(Path.home()))
        if folder:
            self.import_paths([Path(folder)])

    def cancel_import(self) -> None:
        """Drop what waits; stop the running import, or skip the workbook whose sheets are
        being listed."""
        self.pending_imports.clear()
        self.cancel_btn.setEnabled(False)
        self._import_cancelled = True
        if self.import_job is not None:
            self.import_job.stop()

    def import_sample(self) -> None:
        from studio.resources import sample_path

        self.import_paths([sample_path("penguins.csv")])

    def import_paths(self, paths: list[Path]) -> None:
        self.pending_imports.extend(paths)
        if not self._importing:
            self._importing = True
            self._next_import()

    def _next_import(self) -> None:
        if not self.pending_imports:
            self._importing = False
            self.import_job = None
            self.job_progress.hide()
            self.cancel_btn.hide()
            return
        from studio.gui.widgets import sheet_picker
        from studio.gui.worker import run_in_thread

        path = self.pending_imports.pop(0)
        self._import_cancelled = False
        self.cancel_btn.setEnabled(True)
        self.cancel_btn.show()
        if not sheet_picker.is_workbook(path):
            self._start_import(path, None)
            return
        # A workbook's sheets are read off the GUI thread; the person then picks one.
        self.status(f"Reading the sheets of {path.name}…")
        run_in_thread(lambda: sheet_picker.list_sheets(path),
                      lambda sheets: self._on_sheets(path, sheets),
                      lambda _message: self._start_import(path, None))  # the job explains

    def _on_sheets(self, path: Path, sheets: list[tuple[str, int, int]]) -> None:
        from studio.gui.widgets import sheet_picker

        if self._import_cancelled:
            self.status(f"Import of {path.name} cancelled; nothing was kept")
            QTimer.singleShot(0, self._next_import)
            return
        go_on, sheet = sheet_picker.ask_sheet(self, path, sheets)
        if not go_on:  # the person cancelled the choice of sheet: skip this file
            self.status(f"{path.name} not imported")
            QTimer.singleShot(0, self._next_import)
            return
        self._start_import(path, sheet)

    def _start_import(self, path: Path, sheet: str | None) -> None:
        """Show a file already imported unchanged at once, else start its import job. The
        check hashes the stored snapshot (a damaged one is imported again): a worker's job."""
        from studio.core.datasets.catalog import find_imported
        from studio.gui.worker import run_in_thread

        self.go(self.datasets)
        if path.is_dir():  # folders are walked to be recognised: the job does that
            self._run_import_job(path, sheet)
            return
        self.status(f"Checking {path.name}…")
        run_in_thread(lambda: find_imported(self.ws, path, sheet=sheet),
                      lambda seen: self._on_checked(path, sheet, seen),
                      lambda _message: self._on_checked(path, sheet, None))  # the job explains

    def _on_checked(self, path: Path, sheet: str | None, seen: Any) -> None:
        if self._import_cancelled:
            self.status(f"Import of {path.name} cancelled; nothing was kept")
            QTimer.singleShot(0, self._next_import)
        elif seen is not None:  # unchanged since it was imported: show it at once
            self.status(f"{path.name} is already imported as “{seen.name}”")
            self.datasets.show_dataset(seen.name)
            QTimer.singleShot(0, self._next_import)
        else:
            self._run_import_job(path, sheet)

    def _run_import_job(self, path: Path, sheet: str | None) -> None:
        try:
            job = JobBridge(self.ws, "import", {"path": str(path), "name": None,
                                                "sheet": sheet}, self)
            job.events.connect(self._on_import_events)
            job.finished.connect(lambda final: self._on_imported(path, final))
            self.import_job = job
            job.start()
        except Exception as exc:  # whatever it is, the queue must go on
            self.import_job = None
            self.error(f"Could not import {path.name}:\n{exc}")
            QTimer.singleShot(0, self._next_import)
            return
        self.status(f"Importing {path.name}…")
        self.job_progress.setRange(0, 0)
        self.job_progress.show()
        self.cancel_btn.setEnabled(True)
        self.cancel_btn.show()

    def _on_import_events(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Progress) and event.total:
                # per mille: byte counts of big files overflow QProgressBar's int
                self.job_progress.setRange(0, 1000)
                self.job_progress.setValue(int(1000 * event.current / event.total))
                self.job_progress.setFormat(f"{event.stage} %p%")

    def _on_imported(self, path: Path, final: Done | Failed) -> None:
        self.import_job = None  # ended: a Cancel from now on is about what comes next
        if isinstance(final, Done):
            from studio.core.datasets.report import import_summary

            report = final.result
            warnings = report.get("warnings") or []
            text = f"Imported {path.name} as {import_summary(report)}"
            if warnings:  # how it was read (a JSON key, a sheet), or what was skipped
                text += f" — {warnings[0]}" + (f" (+{len(warnings) - 1} more)"
                                               if len(warnings) > 1 else "")
            self.status(text)
            self.status_text.setToolTip("\n".join([text, *warnings[1:]]))
            self.datasets.show_dataset(report["dataset"])
        elif final.cancelled:
            self.status(f"Import of {path.name} cancelled; nothing was kept")
        else:
            # the error itself begins with the file's name: say it once
            detail = final.error.removeprefix(f"{path}: ").removeprefix(f"{path.name}: ")
            self.error(f"Could not import {path.name}:\n{detail}")
        QTimer.singleShot(0, self._next_import)

    # -- train and serve --------------------------------------------------------------------

    def train(self, options: dict) -> None:
        """Start training with the choices of the Datasets page (TrainSpec fields)."""
        from studio.core.errors import StudioError

        try:
            self.training.start(**options)
        except StudioError as exc:
            self.error(str(exc))
            return
        self.datasets.set_busy(True)
        self.go(self.training)
        self.status(f"Training on {options['dataset']}…")

    def tune(self, fields: dict) -> None:
        """Open the Tune window on the Train form's dataset and target."""
        from studio.gui.pages.tune.view import TuneWindow

        if self.tuning is not None and self.tuning.running:
            self.tuning.show()  # it may have been closed with the search still ending
            self.tuning.raise_()
            self.tuning.activateWindow()
            return
        self.tuning = TuneWindow(self.ws, fields, self)
        self.tuning.registered.connect(self._on_registered)
        self.tuning.search_ended.connect(lambda _f: self.runs.refresh()
                                     if self.runs.isVisible() else None)
        self.tuning.show()

    def _on_trained(self, final: Done | Failed) -> None:
        self.datasets.set_busy(False)
        if isinstance(final, Done):
            ref = final.result["version"]
            self.models.refresh(select=ref)
            self.compress.refresh()
            self.serving.refresh(select=ref)
            self.status(f"Registered {ref}")
        if self.runs.isVisible():
            self.runs.refresh()
        if not isinstance(final, Done):
            self.status(f"Training ended: {final.error}", error=not final.cancelled)

    def _on_registered(self, ref: str) -> None:
        """A family of the leaderboard became a version."""
        self.models.refresh(select=ref)
        self.compress.refresh()
        self.serving.refresh(select=ref)
        self.datasets.sync()  # the Train form's "adds version N" moved on
        self.status(f"Registered {ref}")

    def _on_compressed(self, ref: str) -> None:
        """The lab registered ``ref`` (or an alias moved): the lists show it now."""
        self.models.refresh(select=ref, keep_view=True)
        self.serving.refresh()

    def _on_models_changed(self) -> None:
        self.models.refresh()
        self.compress.refresh()
        self.serving.refresh()
        self.datasets.sync()  # the Train form's "adds version N" may have moved on

    def open_dataset(self, ref: str) -> None:
        """Open the dataset a version learned from (``NAME@DIGEST12``), when it is still here
        with that content; else say what became of it."""
        name, _, digest = ref.partition("@")
        row = self.ws.db.conn.execute("SELECT digest FROM datasets WHERE name = ?",
                                      [name]).fetchone()
        if row is None:
            self.status(f"The dataset {name} (snapshot {digest}) is no longer in the workspace")
            return
        self.go(self.datasets)
        self.datasets.show_dataset(name)
        if digest and not str(row[0]).startswith(digest):
            self.status(f"{name} has changed since: the version learned from snapshot "
                        f"{digest}, {name} now holds {str(row[0])[:12]}")

    def open_version(self, ref: str) -> None:
        """A version a run registered, on the Models page (it may have been deleted since)."""
        self.go(self.models)
        self.models.refresh(select=ref)

    def open_compress(self, ref: str) -> None:
        self.go(self.compress)
        self.compress.select(ref)  # says why on the status bar when it cannot

    def serve(self, ref: str) -> None:
        """Serve ``ref``: added to the running server without a restart, else started."""
        self.go(self.serving)
        self.serving.serve(ref)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.training.shutdown()
        if self.tuning is not None:
            self.tuning.close()
        self.models.shutdown()
        self.compress.shutdown()
        self.serving.stop(wait=True)
        if self.import_job is not None:  # it ends and removes what it stored, told next time
            self.import_job.runner.abandon()
        super().closeEvent(event)
