"""The Evaluation view of one model version, in the Models page's area: headline metrics,
then per task the confusion matrix (its cells list their rows), per-class scores, ROC and
precision-recall curves, or the regression's error plots; the worst errors and the
permutation importance of the columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.registry import Version
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.document import Evaluation, load_evaluation
from studio.gui.pages.evaluation.headline import MetricCards
from studio.gui.pages.evaluation.plain import PlainElided, label, short, tip
from studio.gui.worker import run_in_thread


class EvaluationView(QWidget):
    closed = Signal()

    def __init__(self, ws: Workspace, version: Version, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws, self.version = ws, version
        self.evaluation: Evaluation | None = None
        self.cards: MetricCards | None = None
        self.heatmap: Any = None
        self.cell_rows: Any = None
        self.per_class: Any = None
        self._curves: Lazy | None = None
        self.plots: Any = None
        self.worst: Any = None
        self._importance: Lazy | None = None
        self.hint: Any = None
        self.unseen: Any = None
        self.back = back = QPushButton("← Models")
        back.setToolTip("Back to the list of models (Esc)")
        back.setShortcut("Esc")
        back.clicked.connect(self.closed.emit)
        self.title = label(f"Evaluation of {version.ref}", "pageTitle")
        self.subtitle = PlainElided("")
        self.subtitle.setObjectName("muted")
        top = QHBoxLayout()
        top.addWidget(back)
        top.addWidget(self.title)
        top.addWidget(self.subtitle, 1)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setTabBarAutoHide(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        try:
            self.evaluation = load_evaluation(ws, version)
        except StudioError as exc:
            self.message = label(str(exc), "muted")
            self.message.setWordWrap(True)
            self.tabs.addTab(self.message, "Evaluation")
            return
        self._build(self.evaluation)

    def _build(self, ev: Evaluation) -> None:
        from studio.gui.pages.evaluation.source import DatasetRows

        self.source = DatasetRows(self.ws, ev)
        what = f"{ev.task} of “{ev.target}”" if ev.target else ev.task
        split = "test split" if ev.split == "test" else "all rows"
        parts = [what, f"{split} of {ev.dataset}", f"{ev.n:,} rows"]
        if ev.truncated:
            parts.append("plots and cells show 20,000 of them")
        self.subtitle.setText(" · ".join(parts))
        overview = QWidget()
        box = QVBoxLayout(overview)
        box.setContentsMargins(0, 8, 0, 0)
        self.cards = MetricCards(ev)
        box.addWidget(self.cards)
        if not ev.full:
            self.hint = label(
                "This version has no full evaluation (it was made before evaluations were "
                "stored): these are the test metrics of its manifest. The full evaluation — "
                "per-class scores, curves, worst errors, feature importance — is made by\n"
                f"    {ev.evaluate_command()}", "hint")
            self.hint.setWordWrap(True)
            self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.hint.setStyleSheet("#hint { background: #fef7e0; border: 1px solid #f9e39a;"
                                    " border-radius: 6px; padding: 6px 10px; }")
            box.addWidget(self.hint)
        unseen = ev.section("unseen")
        if isinstance(unseen, dict) and unseen.get("rows"):
            box.addWidget(self._unseen_note(unseen))
        if ev.task == "classification":
            box.addWidget(self._confusion(ev), 1)
        elif ev.full:
            from studio.gui.pages.evaluation.regression import RegressionPlots

            self.plots = RegressionPlots(ev)
            box.addWidget(self.plots, 1)
        else:
            box.addStretch(1)
        self.tabs.addTab(overview, "Overview")
        if ev.full:
            self._full_tabs(ev)

    def _unseen_note(self, unseen: dict[str, Any]) -> QWidget:
        """Rows of classes the model never saw score as wrong but have no cell."""
        classes = unseen.get("classes") or {}
        named = ", ".join(f"{short(str(name), 40)} ({count:,})"
                          for name, count in list(classes.items())[:5])
        more = f" and {len(classes) - 5} more" if len(classes) > 5 else ""
        n = int(unseen["rows"])
        self.unseen = label(
            f"{n:,} row{'s' if n != 1 else ''} of classes the model never saw"
            + (f": {named}{more}" if named else "")
            + " — scored as wrong, outside the matrix.", "muted")
        self.unseen.setWordWrap(True)
        return self.unseen

    def _confusion(self, ev: Evaluation) -> QWidget:
        from studio.gui.pages.evaluation.cell_rows import CellRows
        from studio.gui.pages.evaluation.heatmap import ConfusionHeatmap

        self.heatmap = ConfusionHeatmap()
        if ev.confusion and ev.labels and len(ev.confusion) == len(ev.labels):
            self.heatmap.set_matrix(ev.labels, ev.confusion)
        self.cell_rows = CellRows(ev, self.source)
        self.heatmap.cell_clicked.connect(self.cell_rows.show_cell)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(_framed(self.heatmap))
        split.addWidget(self.cell_rows)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        split.setSizes([650, 350])  # scaled to the room there is
        return split

    def _full_tabs(self, ev: Evaluation) -> None:
        from studio.gui.pages.evaluation.importance import Importance
        from studio.gui.pages.evaluation.tables import WorstTable, per_class_table

        if ev.task == "classification":
            from studio.gui.pages.evaluation.curves import Curves

            self.per_class = per_class_table(ev)
            self.tabs.addTab(self.per_class, "Per class")
            self._curves = Lazy(lambda: Curves(ev))
            self.tabs.addTab(self._curves, "ROC and PR curves")
        self.worst = WorstTable(ev)
        if self.worst.worst:
            self.tabs.addTab(self.worst, f"Worst errors ({len(self.worst.worst)})")
        else:
            none = label("No row is predicted wrong." if ev.task == "classification" else
                         "No error to list.", "muted")
            none.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.tabs.addTab(none, "Worst errors (0)")
        self._importance = Lazy(lambda: Importance(ev.section("importance")))
        self.tabs.addTab(self._importance, "Feature importance")
        modality = self.version.manifest.raw.get("recipe", {}).get("modality")
        if modality == "image" and self.worst.worst:
            numbers = [int(w.get("row", -1)) for w in self.worst.worst]
            source = self.source
            run_in_thread(lambda: source.thumbnails(numbers, 56), self._on_worst_thumbnails,
                          self._on_worst_failed)

    @property
    def curves(self) -> Any:
        return self._curves.widget() if self._curves is not None else None

    @property
    def importance(self) -> Any:
        return self._importance.widget() if self._importance is not None else None

    def _on_worst_thumbnails(self, images: list[Any]) -> None:
        self.worst.set_thumbnails(images)

    def _on_worst_failed(self, message: str) -> None:
        self.worst.setToolTip(tip(f"The pictures cannot be shown: {message}"))


class Lazy(QWidget):
    """A tab built when first shown: a view of twenty classes' curves opens at once."""

    def __init__(self, build: Callable[[], QWidget]) -> None:
        super().__init__()
        self._build: Callable[[], QWidget] | None = build
        self._content: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def widget(self) -> QWidget:
        if self._content is None and self._build is not None:
            self._content, self._build = self._build(), None
            self._layout.addWidget(self._content)
        assert self._content is not None
        return self._content

    def showEvent(self, event: QShowEvent) -> None:
        self.widget()
        super().showEvent(event)


def _framed(widget: QWidget) -> QFrame:
    frame = QFrame()
    frame.setObjectName("heatmapFrame")
    frame.setStyleSheet("#heatmapFrame { background: white; border: 1px solid #e4e7eb;"
                        " border-radius: 6px; }")
    box = QVBoxLayout(frame)
    box.setContentsMargins(6, 6, 6, 6)
    box.addWidget(widget)
    return frame
