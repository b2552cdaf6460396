"""Compress: pick a version, tick methods (each with its settings; greyed with the reason
where it does not apply), Run the lab as a job, and read the results as they come, in a
table beside the source and on a chart of metric against size or latency. Set alias… points
an alias at a result, never on its own and never silently at a collapsed one."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.events import Compressed, Done, Event, Failed, Log, Progress
from studio.core.workspace import Workspace
from studio.gui.job_bridge import JobBridge
from studio.gui.pages.compress import plan
from studio.gui.pages.compress.history import earlier_rows
from studio.gui.pages.compress.methods_panel import MethodPanel
from studio.gui.pages.compress.results_table import ResultsTable
from studio.gui.pages.compress.run_bar import RunBar
from studio.gui.pages.compress.text import collapse_text, results
from studio.gui.pages.compress.versions import VersionPicker
from studio.gui.pages.evaluation.plain import PlainElided, label, tip
from studio.gui.pages.models import ask
from studio.gui.pages.models.ask import show_message

HINT = ("Each result becomes a new version of the model, scored on the source's test split "
        "and measured beside it on this machine")


class CompressPage(QWidget):
    notice = Signal(str)  # one line for the status bar
    registered = Signal(str)  # a version the lab made, or whose aliases changed

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.job: JobBridge | None = None
        self.version: Any = None  # the registry Version chosen
        self.stopping = False
        self.warnings: list[str] = []
        self.made: list[dict[str, Any]] = []  # the results this run registered
        self.dialog: Any = None  # the last dialog opened
        self.chart: Any = None  # the ResultScatter, made when first seen (pyqtgraph)
        self._sized = False
        self._waiting = False  # the run bar says why Run waits

        self.picker = VersionPicker()
        self.picker.setToolTip("The version to compress; each result becomes a new version "
                               "of the same model, with this one as its parent")
        self.picker.currentIndexChanged.connect(lambda _i: self._on_version())
        self.run_btn = QPushButton("Run")
        self.run_btn.setObjectName("primary")
        self.run_btn.clicked.connect(lambda: self.run())
        top = QHBoxLayout()
        top.addWidget(label("Compress", "pageTitle"))
        top.addSpacing(16)
        top.addWidget(label("Version"))
        top.addWidget(self.picker, 1)
        top.addWidget(self.run_btn)

        self.bar = RunBar()
        self.bar.say(HINT)
        self.bar.stop_btn.clicked.connect(lambda: self.stop())
        self.methods = MethodPanel()
        self.methods.changed.connect(self._update_run)

        self.chart_box = QWidget()
        self.chart_layout = QVBoxLayout(self.chart_box)
        self.chart_layout.setContentsMargins(0, 0, 0, 0)

        self.table = ResultsTable()
        self.table.itemSelectionChanged.connect(self._on_row)
        self.caption = PlainElided("")
        self.caption.setObjectName("muted")
        self.alias_btn = QPushButton("Set alias…")
        self.alias_btn.setToolTip("Point an alias (production, staging…) at the selected "
                                  "result; nothing is promoted on its own")
        self.alias_btn.clicked.connect(lambda: self.ask_alias())
        results_area = QWidget()
        results_box = QVBoxLayout(results_area)
        results_box.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(label("Results", "sectionTitle"))
        head.addSpacing(8)
        head.addWidget(self.caption, 1)
        head.addWidget(self.alias_btn)
        results_box.addLayout(head)
        results_box.addWidget(self.table, 1)

        self.upper = QSplitter(Qt.Orientation.Horizontal)
        self.upper.addWidget(self.methods)
        self.upper.addWidget(self.chart_box)
        self.upper.setChildrenCollapsible(False)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self.upper)
        self.split.addWidget(results_area)
        self.split.setChildrenCollapsible(False)
        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addWidget(self.bar)
        outer.addWidget(self.split, 1)
        self.methods.set_version(None, None, [])
        self._on_row()
        self._update_run()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._ensure_chart()
        if not self._sized:  # the first time the page has its size: share it out
            self._sized = True
            w, h = self.upper.width() or self.width(), self.split.height() or self.height()
            left = min(max(320, int(w * 0.4)), 440)
            self.upper.setSizes([left, w - left])
            self.split.setSizes([int(h * 0.53), h - int(h * 0.53)])

    def _ensure_chart(self) -> None:
        """The chart (and pyqtgraph) only once the page is seen: start-up stays quick."""
        if self.chart is None:
            from studio.gui.pages.compress.scatter import ResultScatter

            self.chart = ResultScatter()
            self.chart.point_clicked.connect(self.table.select_index)
            self.chart_layout.addWidget(self.chart)
            self._redraw()

    def _redraw(self) -> None:
        if self.chart is not None:
            self.chart.draw(self.table.rows, self.table.selected_index())

    # -- the version ------------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        """List the versions again, keeping the one chosen (or choosing ``select``). Put off
        while a run goes on: its source and results stay on screen until it ends."""
        from studio.core.registry.listing import version_rows

        if self.running:
            return  # the run's end refreshes
        self.picker.fill(version_rows(self.ws), select or self.picker.current_ref())
        self.methods.has_versions = bool(self.picker.rows)
        if (self.version.ref if self.version else None) != self.picker.current_ref():
            self._on_version()
        else:
            self._update_run()

    def select(self, ref: str) -> bool:
        """Choose version ``ref`` (as the Models page does to open it here); False when it
        is not registered, or while a run goes on."""
        if self.running:
            self.notice.emit("The lab is running: stop it or wait before choosing another "
                             "version")
            return False
        if ref not in self.picker.rows:
            self.refresh()
        if not self.picker.select(ref):
            self.notice.emit(f"{ref} is not in the registry")
            return False
        return True

    def _on_version(self) -> None:
        from studio.core.compress.availability import missing_data_reason
        from studio.core.datasets.catalog import list_datasets
        from studio.core.registry import get_version

        ref = self.picker.current_ref()
        self.version = None
        missing: str | None = None
        if ref is not None:
            try:
                self.version = get_version(self.ws, ref)
                missing = missing_data_reason(self.ws, self.version)
            except StudioError as exc:  # a damaged manifest: said, and nothing offered
                self.notice.emit(f"{ref} cannot be read: {exc}")
                self.version = None
        datasets = [d.name for d in list_datasets(self.ws)] if missing else []
        if self.job is None:
            self.bar.say(HINT)  # the last run's outcome was about another version
        self.methods.set_version(self.version.manifest if self.version else None, missing,
                                 datasets)
        self._show_earlier()
        self._update_run()

    def _show_earlier(self) -> None:
        """The source and what the lab made from it before."""
        v = self.version
        if v is None:
            self.table.show_source(None, None, None)
            self.caption.setText("")
        else:
            row = self.picker.rows.get(v.ref)
            self.table.show_source(v.ref, row.metric if row else None,
                                   row.score if row else None)
            earlier = earlier_rows(self.ws, v.ref)
            for result in earlier:
                self.table.add(result)
            self.caption.setText(f"Earlier: {results(len(earlier))} of {v.ref}, from "
                                 "their versions' records" if earlier else
                                 f"Nothing made from {v.ref} yet: tick methods and Run")
        self._on_row()

    # -- running ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.job is not None

    def _update_run(self) -> None:
        reason = self.methods.blocker()
        self.run_btn.setEnabled(reason is None and not self.running)
        self.run_btn.setToolTip(tip(reason) if reason else "Apply the ticked methods, each "
                                "result registered as a version, evaluated and measured "
                                "beside the source")
        # the reason Run waits replaces the line, its end clears it; an outcome stays
        if not self.running and (reason or self._waiting):
            self.bar.say(reason or HINT)
        self._waiting = reason is not None

    def run(self) -> bool:
        """Start the lab on the chosen version with the ticked methods; False when it
        cannot start (the reason is shown)."""
        if self.running or self.version is None:
            return False
        reason = self.methods.blocker()
        if reason:
            self.bar.say(reason, error=True)
            return False
        try:
            steps = self.methods.steps()
        except StudioError as exc:  # a setting typed halfway
            self.bar.say(str(exc), error=True)
            return False
        chain = self.methods.chain.isChecked()
        spec = plan.spec(self.version.ref, steps, chain, self.methods.chosen_dataset())
        try:
            job = JobBridge(self.ws, "compress", spec, self)
            job.events.connect(self._on_events)
            job.finished.connect(self._on_finished)
            job.start()
        except Exception as exc:  # no process could start: said, nothing changed
            self.dialog = show_message(self, "Compress", f"Could not start: {exc}")
            return False
        self.job, self.stopping, self.warnings, self.made = job, False, [], []
        names = [s["method"] for s in spec["steps"]]
        row = self.picker.rows.get(self.version.ref)
        self.table.show_source(self.version.ref, row.metric if row else None,
                               row.score if row else None)
        self.caption.setText("Chained: " + " → ".join(names) if chain else
                             "Side by side: " + ", ".join(names))
        self._on_row()
        self.bar.begin(len(names), f"Starting: {', '.join(names)} on {self.version.ref}")
        self._set_busy(True)
        return True

    def stop(self) -> None:
        """End the run at its next step; what is registered stays, no half version."""
        if self.job is not None and not self.stopping:
            self.stopping = True
            self.bar.stopping()
            self.job.stop()

    def _set_busy(self, busy: bool) -> None:
        self.picker.setEnabled(not busy)
        self.methods.setEnabled(not busy)
        self._update_run()

    def _on_events(self, batch: list[Event]) -> None:
        for event in batch:
            if isinstance(event, Progress):
                if not self.stopping:
                    self.bar.on_progress(event)
            elif isinstance(event, Compressed):
                self._on_result(dict(event.row))
            elif isinstance(event, Log) and event.level in ("warning", "error"):
                self.warnings.append(event.message)

    def _on_result(self, row: dict[str, Any]) -> None:
        i = self.table.add(row)
        if row.get("version"):
            self.made.append(row)
            self.registered.emit(str(row["version"]))
        if row.get("collapsed") or row.get("status") == "failed":
            self.table.select_index(i)  # what needs a look is shown
        self._redraw()

    def _on_finished(self, final: Done | Failed) -> None:
        self.job = None
        made = self.made
        if isinstance(final, Done):
            result = final.result
            total = len(result.get("results") or [])
            collapsed = [r["version"] for r in made if r.get("collapsed")]
            text = (f"{len(made)} of {results(total)} registered in "
                    f"{float(result.get('duration_s') or 0):.1f} s")
            if collapsed:
                text += f"; {', '.join(collapsed)} collapsed (flagged, never promoted)"
            if any(r.get("value") is None for r in made):
                text += "; not evaluated: no data to score them on"
            self.bar.idle(text, error=bool(collapsed))
            self.notice.emit(text)
        elif final.cancelled or self.stopping:
            text = "Stopped: no half-made version was kept" + (
                "; kept from before the stop: " + ", ".join(str(r["version"]) for r in made)
                if made else "")
            self.bar.idle(text)
            self.notice.emit(text)
        else:
            self.bar.idle(f"The run failed: {final.error.splitlines()[0]}", error=True)
            self.dialog = show_message(self, "Compress", f"The run failed:\n{final.error}")
        if self.warnings:  # the lab's own words, whole, for who hovers
            self.bar.text.setToolTip(tip("\n".join([self.bar.text.text(), *self.warnings])))
        self.stopping = False
        self._set_busy(False)
        self.refresh()

    def shutdown(self) -> None:
        """The window closes: a run ends, and keeps only whole versions."""
        if self.job is not None:
            self.job.runner.abandon()

    # -- the selected result ----------------------------------------------------------------

    def _on_row(self) -> None:
        row = self.table.selected_row()
        ok = row is not None and bool(row.get("version")) and row.get("status") != "failed"
        self.alias_btn.setEnabled(ok)
        if row is not None and row.get("collapsed"):
            self.alias_btn.setToolTip(tip(collapse_text(row)))
        else:
            self.alias_btn.setToolTip("Point an alias (production, staging…) at the selected "
                                      "version; nothing is promoted on its own")
        self._redraw()

    def ask_alias(self) -> Any:
        """The Set alias dialog for the selected result (returned, for callers)."""
        from studio.gui.pages.compress.alias import AliasDialog

        row = self.table.selected_row()
        if row is None or not row.get("version"):
            return None
        name = str(row["version"]).partition(":")[0]
        dialog = AliasDialog(row, self._aliases(name), self)
        dialog.accepted.connect(lambda: self.set_alias(str(row["version"]), dialog.alias(),
                                                       row))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.dialog = dialog
        return dialog

    def _aliases(self, name: str) -> dict[str, str]:
        rows = self.ws.db.conn.execute("SELECT alias, version FROM aliases WHERE name = ?",
                                       [name]).fetchall()
        return {alias: f"{name}:{number}" for alias, number in rows}

    def set_alias(self, ref: str, alias: str, row: dict[str, Any] | None = None) -> bool:
        """Point ``NAME@alias`` at ``ref``; a collapsed result (``row``: its row in the
        table) only after the person says yes to its loss."""
        from studio.core.registry.labels import set_alias

        name = ref.partition(":")[0]
        if row is not None and row.get("collapsed") and not ask.confirm(
                self, "Alias a collapsed result",
                f"{collapse_text(row)}\n\nPoint {name}@{alias} at {ref} anyway?"):
            self.notice.emit(f"{name}@{alias} left as it was")
            return False
        try:
            moved = set_alias(self.ws, name, alias, ref)
        except StudioError as exc:
            self.dialog = show_message(self, "Set alias", str(exc))
            return False
        was = f" (was {name}:{moved.previous})" if moved.previous not in (None,
                                                                            moved.version) else ""
        self.notice.emit(f"{name}@{alias} → {ref}{was}")
        self.bar.say(f"{name}@{alias} now points at {ref}{was}")
        self.registered.emit(ref)
        return True
