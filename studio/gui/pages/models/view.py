"""Models: every registered version (from the registry's listing columns: no manifest is read
for the list), the selected version's details, card and lineage, comparing versions, and
archive, delete and freeing disk space. A version's Evaluation opens in the page's area."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.registry.listing import VersionRow
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import label, tip
from studio.gui.pages.models import ask
from studio.gui.pages.models.ask import show_message
from studio.gui.pages.models.card import CardEditor, MarkdownView, card_markdown, card_window
from studio.gui.pages.models.details import DetailsPanel
from studio.gui.pages.models.disk import DiskUse
from studio.gui.pages.models.lineage import LineageGraph
from studio.gui.pages.models.table import VersionTable
from studio.gui.pages.models.text import evaluation_missing
from studio.gui.pages.models.transfer import Transfers


class ModelsPage(QWidget):
    serve_requested = Signal(str)  # a version ref
    compress_requested = Signal(str)  # a version ref, for the Compress page
    dataset_requested = Signal(str)  # NAME@DIGEST12: a lineage's dataset was clicked
    notice = Signal(str)  # one line for the status bar

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.rows: list[VersionRow] = []
        self.evaluation: Any = None  # the EvaluationView shown, if any
        self.dialog: Any = None  # the last dialog opened (a refusal, the comparison …)
        self._sized = False

        title = label("Models", "pageTitle")
        self.compare_btn = QPushButton("Compare")
        self.compare_btn.setToolTip("Select two or more versions (Ctrl+click) to compare them; "
                                    "with one selected, all versions of its model")
        self.compare_btn.clicked.connect(lambda: self.open_compare())
        self.transfers = Transfers(self)
        self.transfer_btn = QPushButton("Import / Export")
        self.transfer_btn.setMenu(self.transfers.menu)
        self.serve_btn = QPushButton("Serve this version ▶")
        self.serve_btn.setObjectName("primary")
        self.serve_btn.clicked.connect(self._on_serve)
        self.evaluation_btn = QPushButton("Evaluation")
        self.evaluation_btn.clicked.connect(lambda: self.open_evaluation())
        self.compress_btn = QPushButton("Compress…")
        self.compress_btn.setToolTip("Make smaller, faster versions of this one (int8, fp16, "
                                     "pruning, distillation) on the Compress page")
        self.compress_btn.clicked.connect(self._on_compress)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        for widget in (self.compare_btn, self.transfer_btn, self.evaluation_btn,
                       self.compress_btn, self.serve_btn):
            top.addWidget(widget)

        self.show_archived = QCheckBox("Show archived")
        self.show_archived.setToolTip("List archived versions too (greyed)")
        self.show_archived.toggled.connect(lambda _on: self.refresh())
        self.disk = DiskUse(ws, self)
        self.disk.notice.connect(self.notice.emit)
        self.disk.measured.connect(self._on_disk)
        bar = QHBoxLayout()
        bar.addWidget(self.show_archived)
        bar.addSpacing(12)
        bar.addWidget(self.disk.label, 1)
        bar.addWidget(self.disk.free_btn)

        self.table = VersionTable()
        self.table.itemSelectionChanged.connect(self._on_select)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _i: self.open_evaluation())
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(lambda: self.delete())
        self.empty = QLabel("No models yet. Train one from the Datasets page, or drop a model "
                            "file (ONNX, safetensors, a bundle) here to import it.")
        self.empty.setWordWrap(True)
        self.empty.setObjectName("muted")

        self.details = DetailsPanel(ws)
        self.details.changed.connect(lambda ref: self.refresh(select=ref, keep_view=True))
        self.details.archive_btn.clicked.connect(lambda: self.toggle_archive())
        self.details.delete_btn.clicked.connect(lambda: self.delete())
        self.card = MarkdownView()
        self.edit_card_btn = QPushButton("Edit card…")
        self.edit_card_btn.clicked.connect(lambda: self.edit_card())
        self.lineage = LineageGraph()
        self.lineage.version_clicked.connect(self.select_version)
        self.lineage.dataset_clicked.connect(self.dataset_requested.emit)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._card_tab(), "Model card")
        self.tabs.addTab(self._lineage_tab(), "Lineage")

        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.details)
        lower.addWidget(self.tabs)
        lower.setStretchFactor(0, 4)
        lower.setStretchFactor(1, 5)
        self.lower = lower
        upper = QWidget()
        upper_box = QVBoxLayout(upper)
        upper_box.setContentsMargins(0, 0, 0, 0)
        upper_box.addLayout(bar)
        upper_box.addWidget(self.empty)
        upper_box.addWidget(self.table, 1)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(upper)
        self.split.addWidget(lower)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        self.split.setChildrenCollapsible(False)
        self.list_panel = QWidget()
        layout = QVBoxLayout(self.list_panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.transfers.bar)
        layout.addWidget(self.split, 1)
        # The list and one version's evaluation share the page: the evaluation needs its room.
        self.stack = QStackedWidget()
        self.stack.addWidget(self.list_panel)
        outer = QVBoxLayout(self)
        outer.addWidget(self.stack)
        self.setAcceptDrops(True)  # a model file, folder or bundle dropped here is imported
        self._set_enabled(None)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._sized:  # the first time the page has its size: share it out
            self._sized = True
            w, h = self.lower.width() or self.width(), self.split.height() or self.height()
            self.lower.setSizes([int(w * 0.42), w - int(w * 0.42)])
            self.split.setSizes([int(h * 0.4), h - int(h * 0.4)])

    def _card_tab(self) -> QWidget:
        tab = QWidget()
        box = QVBoxLayout(tab)
        box.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(label("Markdown; what the version was made with stays in its files",
                            "muted"), 1)
        row.addWidget(self.edit_card_btn)
        box.addLayout(row)
        box.addWidget(self.card, 1)
        return tab

    def _lineage_tab(self) -> QWidget:
        tab = QWidget()
        box = QVBoxLayout(tab)
        box.setContentsMargins(0, 4, 0, 0)
        box.addWidget(label("Click a version to go to it, the dataset to open it", "muted"))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.lineage)
        box.addWidget(scroll, 1)
        return tab

    # -- the list ---------------------------------------------------------------------------

    def refresh(self, select: str | None = None, keep_view: bool = False) -> None:
        """List the versions again; ``select`` (a ref) becomes the one shown. A version just
        made (``select`` without ``keep_view``) closes an open evaluation, so it is seen."""
        from studio.core.registry.listing import version_rows

        if select is not None and not keep_view:
            self.close_evaluation()
        self.rows = version_rows(self.ws, archived=self.show_archived.isChecked())
        keep = [select] if select else self.table.selected_refs()
        self.empty.setVisible(not self.rows)
        self.table.fill(self.rows, keep, select or self.table.current_ref())
        if not self.rows:
            self._on_select()
        self.disk.measure()

    def _selected(self) -> VersionRow | None:
        """The version the details show."""
        ref = self.table.current_ref()
        return self.table.rows.get(ref) if ref else None

    def select_version(self, ref: str) -> None:
        """Go to ``ref`` in the list (listing archived versions when it is one)."""
        if ref not in self.table.rows and not self.show_archived.isChecked():
            self.show_archived.blockSignals(True)
            self.show_archived.setChecked(True)
            self.show_archived.blockSignals(False)
            self.refresh(select=ref, keep_view=True)
        else:
            self.table.select([ref], ref)
        if ref not in self.table.rows:
            self.notice.emit(f"{ref} is no longer in the registry")

    def _on_disk(self, use: dict[str, int]) -> None:
        row = self._selected()
        if row is not None:  # the details say their model's share
            self.details.set_disk(use.get(row.name))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.transfers.import_paths(paths)

    def shutdown(self) -> None:
        self.transfers.shutdown()

    # -- the selected version ---------------------------------------------------------------

    def _on_select(self) -> None:
        from studio.core.registry import get_version
        from studio.core.registry.listing import lineage_edges

        refs = self.table.selected_refs()
        row = self._selected()
        self.transfers.update_actions()
        self.compare_btn.setEnabled(len(refs) >= 2 or (
            row is not None and sum(r.name == row.name for r in self.rows) >= 2))
        if row is None:
            self._set_enabled(None)
            self.card.clear()
            self.lineage.clear()
            return
        try:
            version = get_version(self.ws, row.ref)
        except StudioError as exc:  # a damaged manifest: said, and nothing else shown
            self._set_enabled(None)
            self.card.set_markdown(f"**{row.ref} cannot be read:** {exc}")
            return
        model_rows = [r for r in self.rows if r.name == row.name]
        self.details.show_version(row, version, model_rows, self.disk.use.get(row.name))
        self.card.set_markdown(card_markdown(self.ws, version))
        self.lineage.set_lineage(row.ref, lineage_edges(self.ws, row.name, row.version))
        self._set_enabled(version)

    def _set_enabled(self, version: Any) -> None:
        on = version is not None
        for widget in (self.serve_btn, self.compress_btn, self.details, self.edit_card_btn):
            widget.setEnabled(on)
        reason = evaluation_missing(version) if on else "Select a version"
        self.evaluation_btn.setEnabled(on and reason is None)
        self.evaluation_btn.setToolTip(tip(reason) if reason else
                                       "The selected version's evaluation: confusion matrix, "
                                       "curves, errors, feature importance")

    def _context_menu(self, pos: QPoint) -> None:
        item = self.table.itemAt(pos)
        if item is None:
            return
        ref = self.table.item(item.row(), 0).data(Qt.ItemDataRole.UserRole)
        if ref not in self.table.selected_refs():
            self.table.select([ref], ref)
        self.menu_for(ref).exec(self.table.viewport().mapToGlobal(pos))

    def menu_for(self, ref: str) -> QMenu:
        """The context menu of the version ``ref``."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        act = menu.addAction("Evaluation", lambda: self.open_evaluation(ref))
        row = self.table.rows.get(ref)
        if ref == self.table.current_ref():
            act.setEnabled(self.evaluation_btn.isEnabled())
            act.setToolTip(self.evaluation_btn.toolTip())
        menu.addAction("Serve this version ▶", lambda: self.serve_requested.emit(ref))
        menu.addAction("Compress…", lambda: self.compress_requested.emit(ref))
        refs = self.table.selected_refs()
        if len(refs) >= 2:
            menu.addAction(f"Compare {len(refs)} versions", lambda: self.open_compare(refs))
        menu.addAction("Open the model card", self.open_card)
        menu.addAction("Edit the model card…", lambda: self.edit_card(ref))
        menu.addAction(f"Copy “{ref}”", lambda: copy_text(ref))
        menu.addSeparator()
        archived = row is not None and row.archived is not None
        menu.addAction("Unarchive" if archived else "Archive", lambda: self.toggle_archive(ref))
        menu.addAction("Delete…", lambda: self.delete(ref))
        return menu

    def open_evaluation(self, ref: str | None = None) -> Any:
        """Show the evaluation of version ``ref`` (by default the selected one) in the page;
        returned, for callers."""
        from studio.core.registry import get_version

        ref = ref or self.table.current_ref()
        if ref is None:
            return None
        try:
            v = get_version(self.ws, ref)
        except StudioError as exc:
            self.notice.emit(str(exc))
            return None
        reason = evaluation_missing(v)
        if reason is not None:
            self.notice.emit(reason)
            return None
        from studio.gui.pages.evaluation.view import EvaluationView

        self.close_evaluation()
        self.evaluation = EvaluationView(self.ws, v)
        self.evaluation.closed.connect(self.close_evaluation)
        self.stack.addWidget(self.evaluation)
        self.stack.setCurrentWidget(self.evaluation)
        return self.evaluation

    def close_evaluation(self) -> None:
        if self.evaluation is not None:
            self.stack.setCurrentWidget(self.list_panel)
            self.stack.removeWidget(self.evaluation)
            self.evaluation.deleteLater()
            self.evaluation = None

    def open_card(self) -> QDialog | None:
        """The selected version's card in a window of its own (returned, for callers)."""
        ref = self.table.current_ref()
        return card_window(self.ws, ref, self) if ref else None

    def edit_card(self, ref: str | None = None) -> CardEditor | None:
        """An editor of the card of ``ref`` (default: the selected version); Save stores it."""
        ref = ref or self.table.current_ref()
        if ref is None:
            return None
        self.dialog = editor = CardEditor.for_version(self.ws, ref, self)
        editor.saved.connect(lambda saved: self.refresh(select=saved, keep_view=True))
        return editor

    def open_compare(self, refs: list[str] | None = None) -> QDialog | None:
        """The selected versions side by side (one selected: all versions of its model)."""
        from studio.gui.pages.models.compare_view import CompareDialog

        refs = refs or self.table.selected_refs()
        if len(refs) == 1:
            refs = [r.ref for r in self.rows if r.name == refs[0].partition(":")[0]][-12:]
        order = {r.ref: i for i, r in enumerate(self.rows)}  # by model, oldest version first
        refs = sorted(refs, key=lambda ref: order.get(ref, len(order)))
        if len(refs) < 2:
            return None
        try:
            dialog = CompareDialog(self.ws, refs, self)
        except StudioError as exc:
            self.dialog = show_message(self, "Compare", str(exc))
            return None
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.dialog = dialog
        return dialog

    # -- the end of a version's life --------------------------------------------------------

    def toggle_archive(self, ref: str | None = None) -> None:
        from studio.core.registry.lifecycle import archive

        ref = ref or self.table.current_ref()
        row = self.table.rows.get(ref or "")
        if row is None:
            return
        try:
            archive(self.ws, row.ref, archived=row.archived is None)
        except StudioError as exc:
            self.dialog = show_message(self, f"Archive {row.ref}", str(exc))
            return
        self.notice.emit(f"{row.ref} {'archived' if row.archived is None else 'listed again'}")
        self.refresh(select=row.ref, keep_view=True)

    def delete(self, ref: str | None = None, confirm: bool = True) -> bool:
        """Delete ``ref`` (default: the selected version) after asking; a refusal (an alias
        points at it, a server serves it) is shown in the registry's words."""
        from studio.core.registry.lifecycle import delete_version

        ref = ref or self.table.current_ref()
        if ref is None:
            return False
        if confirm and not ask.confirm(
                self, "Delete version", f"Delete {ref}? Its tags and lineage go with it (a "
                "version an alias points at is kept); its files are removed by Free space."):
            return False
        try:
            delete_version(self.ws, ref)
        except StudioError as exc:
            self.dialog = show_message(self, f"{ref} was not deleted", str(exc))
            return False
        self.notice.emit(f"Deleted {ref}; Free space removes its files")
        self.refresh()
        return True

    def _on_compress(self) -> None:
        ref = self.table.current_ref()
        if ref is not None:
            self.compress_requested.emit(ref)

    def _on_serve(self) -> None:
        ref = self.table.current_ref()
        if ref is not None:
            self.serve_requested.emit(ref)


def copy_text(text: str) -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText(text)
