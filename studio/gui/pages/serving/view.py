"""Serving: one click starts the local server; the page then watches it live (throughput,
latency, errors, batch sizes, the newest requests, input drift, a canary's comparison),
changes what it serves without a restart, tries a row on it, and gives the code to call it
from elsewhere."""

from __future__ import annotations

import contextlib
import html
import sqlite3
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.workspace import Workspace
from studio.gui.pages.serving.canary_panel import CanaryPanel
from studio.gui.pages.serving.client import ServerClient
from studio.gui.pages.serving.code_view import CodeView, target_for
from studio.gui.pages.serving.drift_panel import DriftPanel
from studio.gui.pages.serving.headline import headline
from studio.gui.pages.serving.notify import Notifier
from studio.gui.pages.serving.process import ServerProcess
from studio.gui.pages.serving.requests_table import RecentRequests
from studio.gui.pages.serving.served_list import ServedModels
from studio.gui.pages.serving.try_it import TryIt

TICK_MS = 1000
UNANSWERED_POLLS = 3  # polls without an answer before the page says the server is stuck
GREEN, RED = "#188038", "#d93025"


class ServingPage(QWidget):
    message = Signal(str)  # something a person must read (a dialog)
    server_state = Signal(str)  # "running" | "stopped"
    notice = Signal(str)  # a line for the status bar (a notification without a tray)

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.server = ServerProcess(ws, self)
        self.server.ready.connect(self._on_ready)
        self.server.ended.connect(self._on_ended)
        self.server.output.connect(self._on_output)
        self.client = ServerClient(self)
        self.client.stats.connect(self._on_stats)
        self.client.unreachable.connect(self._on_unreachable)
        self.charts: Any = None  # MonitorCharts, made when first shown (pyqtgraph)
        self.stats: dict[str, Any] | None = None
        self.selected: tuple[str, str] | None = None  # (ref as asked, NAME:N it serves)
        self._restart_refs: list[str] | None = None
        self._asked: list[str] = []  # the refs the server said it serves, last time
        self._unanswered = 0
        self._ever_ready = False

        title = QLabel("Serving")
        title.setObjectName("pageTitle")
        self.version = QComboBox()
        self.version.setMinimumWidth(180)
        self.version.setToolTip("What Start serves: a version, or an alias it follows")
        self.version.currentTextChanged.connect(lambda _t: self._follow_selection())
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(8080)
        self.port.setToolTip("0 picks a free port")
        self.start_btn = QPushButton("Start server ▶")
        self.start_btn.setObjectName("primary")
        self.start_btn.clicked.connect(self.toggle)
        self.restart_btn = QPushButton("Restart")
        self.restart_btn.setToolTip("Stop the server and start it again with what it serves")
        self.restart_btn.setEnabled(False)
        self.restart_btn.clicked.connect(self.restart)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addSpacing(16)
        top.addWidget(QLabel("Version"))
        top.addWidget(self.version, 1)
        top.addWidget(QLabel("Port"))
        top.addWidget(self.port)
        top.addWidget(self.start_btn)
        top.addWidget(self.restart_btn)

        self.status = QLabel("● Stopped")
        self.status.setObjectName("muted")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.status.setOpenExternalLinks(True)
        self.status.setWordWrap(True)

        self.served = ServedModels()
        self.served.add_clicked.connect(self.choose_model)
        self.served.remove_clicked.connect(self.remove_model)
        self.served.selected.connect(self._on_selected)
        self.served.canary_clicked.connect(
            lambda ref: self.canary.choose(ref, (self.stats or {}).get("refs", [])))
        served_box = QGroupBox("Served")
        QVBoxLayout(served_box).addWidget(self.served)

        self.summary = QLabel("No traffic yet.")
        self.summary.setObjectName("muted")
        self.summary.setWordWrap(True)  # its length must not hold the window wide
        self.charts_box = QWidget()
        self.charts_layout = QVBoxLayout(self.charts_box)
        self.charts_layout.setContentsMargins(0, 0, 0, 0)
        self.requests = RecentRequests(ws)
        requests_box = QWidget()
        requests_layout = QVBoxLayout(requests_box)
        requests_layout.setContentsMargins(0, 0, 0, 0)
        requests_layout.addWidget(QLabel("Recent requests (kept in the workspace)"))
        requests_layout.addWidget(self.requests, 1)
        self.split = split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.charts_box)
        split.addWidget(requests_box)
        split.setChildrenCollapsible(False)
        self.canary = CanaryPanel(ws, self.client)
        self.canary.message.connect(self.message)
        monitor = QWidget()
        monitor_layout = QVBoxLayout(monitor)
        monitor_layout.addWidget(self.summary)
        monitor_layout.addWidget(self.canary)
        monitor_layout.addWidget(split, 1)

        self.try_it = TryIt()
        self.try_it.predict_btn.clicked.connect(self.try_row)
        self.code = CodeView()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(1000)
        self.log.setPlaceholderText("What the server writes to its error stream appears here.")
        self.tabs = QTabWidget()
        self.drift = DriftPanel()
        self.notifier = Notifier(self)
        self.notifier.fallback.connect(self.notice)
        self.drift.alert.connect(self.notifier.notify)
        self.drift.open_requested.connect(lambda: self.tabs.setCurrentWidget(self.drift))
        self.tabs.addTab(monitor, "Monitor")
        self.tabs.addTab(self.drift, "Drift")
        self.tabs.addTab(self.try_it, "Try it")
        self.tabs.addTab(self.code, "Code")
        self.tabs.addTab(self.log, "Server log")
        self.tabs.currentChanged.connect(lambda _i: self._on_tab())

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(served_box)
        body.addWidget(self.tabs)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        served_box.setMinimumWidth(240)
        body.setSizes([250, 750])
        body.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.drift.banner)
        layout.addWidget(body, 1)
        self.ticker = QTimer(self)
        self.ticker.setInterval(TICK_MS)
        self.ticker.timeout.connect(self._tick)

    # -- compatibility with the try-it form's callers ------------------------------------

    @property
    def fields(self) -> dict[str, Any]:
        return self.try_it.fields

    @property
    def schema(self) -> list[dict[str, Any]]:
        return self.try_it.schema

    @property
    def form(self) -> Any:
        return self.try_it.form

    @property
    def predict_btn(self) -> QPushButton:
        return self.try_it.predict_btn

    @property
    def bars(self) -> Any:
        return self.try_it.bars

    def answer_text(self) -> str:
        return self.try_it.answer.text()

    @property
    def url(self) -> str | None:
        return self.server.url if self.server.answering else None

    @property
    def running(self) -> bool:
        return self.server.running

    # -- the versions offered ------------------------------------------------------------

    def offered(self) -> list[str]:
        """Aliases first (what a person serves in production), then versions, newest first."""
        from studio.core.registry.labels import aliases
        from studio.core.registry.listing import version_rows

        named = [f"{name}@{a}" for (name, _v), names in sorted(aliases(self.ws).items())
                 for a in names]
        return named + [r.ref for r in reversed(version_rows(self.ws))]

    def refresh(self, select: str | None = None) -> None:
        current = select or self.version.currentText()
        refs = self.offered()
        self.version.blockSignals(True)
        self.version.clear()
        self.version.addItems(refs)
        if current in refs:
            self.version.setCurrentText(current)
        self.version.blockSignals(False)
        self.start_btn.setEnabled(bool(refs) or self.running)
        self._follow_selection()

    # -- the server process ---------------------------------------------------------------

    def toggle(self) -> None:
        if self.running:
            self.stop()
        else:
            self.start()

    def serve(self, ref: str) -> None:
        """Serve ``ref``: added to the running server, else the server starts with it."""
        self.refresh(select=ref)
        if self.running and self.server.answering:
            self.add_model(ref)
        elif not self.running:
            self.start(ref)

    def start(self, ref: str | None = None, refs: list[str] | None = None) -> None:
        refs = refs or [ref or self.version.currentText()]
        if not refs[0]:
            self.message.emit("Train a model first: there is nothing to serve.")
            return
        if ref and ref != self.version.currentText():
            self.version.setCurrentText(ref)
        self._ever_ready = False
        self._unanswered = 0
        self._asked = list(refs)
        self.server.start(refs, self.port.value())
        self._say(f"● Starting {html.escape(', '.join(refs))}…")
        self.start_btn.setText("Stop server ■")
        self.restart_btn.setEnabled(True)
        self.version.setEnabled(False)
        self.port.setEnabled(False)

    def stop(self, wait: bool = False) -> None:
        self._restart_refs = None
        self.server.stop(wait)

    def restart(self) -> None:
        """Start again with what is served now (as asked: an alias stays followed)."""
        refs = self.serving_refs() or self.server.refs or [self.version.currentText()]
        if not self.running:
            self.start(refs=refs)
            return
        self._restart_refs = refs
        self._say("● Restarting…")
        self.server.stop()

    def serving_refs(self) -> list[str]:
        """What the server serves, as asked (the last it said, if it has died since)."""
        return list(self._asked)

    def _on_ready(self, url: str) -> None:
        self._ever_ready = True
        self.client.watch(url)
        self.served.set_enabled(True)
        self.predict_btn.setEnabled(bool(self.schema))
        self._show_serving()
        self.log.appendPlainText(f"ready at {url}")
        self.server_state.emit("running")

    def _on_ended(self, asked: bool, what: str) -> None:
        self.client.unwatch()
        if self.stats is not None:
            self.summary.setText("The server is not running: the charts show its last minute.")
        self.stats = None
        self.served.clear()
        self.canary.clear()
        self.drift.clear()
        self._drift_tab()
        self.predict_btn.setEnabled(False)
        self.start_btn.setText("Start server ▶")
        self.version.setEnabled(True)
        self.port.setEnabled(True)
        self.server_state.emit("stopped")
        if self._restart_refs is not None:
            refs, self._restart_refs = self._restart_refs, None
            self.start(refs=refs)
            return
        if asked:
            self._say("● Stopped")
            self.restart_btn.setEnabled(False)
        elif self._ever_ready:
            self._say(f"<span style='color:{RED}'>●</span> The server stopped unexpectedly "
                      f"({html.escape(what)}). Press Restart to serve "
                      f"{html.escape(', '.join(self._asked))} again.")
            self.restart_btn.setEnabled(True)
        else:
            self._say(f"<span style='color:{RED}'>●</span> The server could not start "
                      f"({html.escape(what)}).")
            self.restart_btn.setEnabled(True)
            self.message.emit(f"The server could not start: {what}")
        self._follow_selection()

    def _on_output(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _show_serving(self) -> None:
        url = self.server.url or ""
        name = (self.selected[1] if self.selected else self.server.refs[0]).split(":")[0]
        name = name.split("@")[0]
        self._say(f"<span style='color:{GREEN}'>●</span> Serving at "
                  f"<a href='{url}/docs'>{url}</a> — V2: "
                  f"<code>{url}/v2/models/{html.escape(name)}/infer</code> · "
                  f"<a href='{url}/metrics'>metrics</a>")

    # -- live numbers ---------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        self._make_charts()
        self.ticker.start()
        self._tick()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self.ticker.stop()
        super().hideEvent(event)

    def _make_charts(self) -> None:
        """Built on first show: pyqtgraph costs ~0.4 s to import, too much for start-up."""
        if self.charts is not None:
            return
        from studio.gui.pages.serving.charts import MonitorCharts

        self.charts = MonitorCharts()
        self.charts_layout.addWidget(self.charts)
        height = max(400, self.split.height())
        self.split.setSizes([height * 3 // 5, height * 2 // 5])  # the charts first

    def _tick(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # a busy database: the next tick reads it
            self.requests.refresh()

    def _on_stats(self, doc: dict[str, Any]) -> None:
        first, stuck = self.stats is None, self._unanswered >= UNANSWERED_POLLS
        self.stats = doc
        self._asked = [r["ref"] for r in doc.get("refs", [])]
        self._unanswered = 0
        if self.charts is not None:
            self.charts.show_window(doc["window"]["series"])
        self.served.show_refs(doc.get("refs", []), doc.get("models", []))
        self.canary.show_stats(doc)
        self.drift.show_report(doc.get("drift") or {})
        self._drift_tab()
        self.summary.setText(headline(doc))
        if first or stuck:  # the line said it was not answering: it is again
            self._show_serving()

    def _drift_tab(self) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.drift),
                             "Drift ⚠" if self.drift.moved() else "Drift")

    def _on_unreachable(self, why: str) -> None:
        self._unanswered += 1
        if self._unanswered == UNANSWERED_POLLS and self.running:
            self._say(f"<span style='color:{RED}'>●</span> The server is not answering "
                      f"({html.escape(why)}).")

    # -- what is served -------------------------------------------------------------------

    def choose_model(self) -> None:
        served = set(self.serving_refs())
        offered = [r for r in self.offered() if r not in served]
        ref, ok = QInputDialog.getItem(self, "Serve another version", "Version or alias:",
                                       offered, 0, True)
        if ok and ref.strip():
            self.add_model(ref.strip())

    def add_model(self, ref: str) -> None:
        self.served.note.setText(f"Loading {ref}…")
        self.client.add(ref, lambda status, doc: self._on_changed(ref, "add", status, doc))

    def remove_model(self, ref: str) -> None:
        self.served.note.setText(f"Removing {ref}…")
        self.client.remove(ref, lambda status, doc: self._on_changed(ref, "remove", status,
                                                                     doc))

    def _on_changed(self, ref: str, what: str, status: int, doc: dict[str, Any]) -> None:
        if status == 200:
            self.served.note.setText(f"Now serving {doc['added']}." if what == "add"
                                     else f"{ref} is no longer served.")
            self.client.poll()
            return
        self.served.note.setText("")
        self.message.emit(f"Could not {what} {ref}: {doc.get('error') or f'HTTP {status}'}")

    # -- the selected version: try it, code ------------------------------------------------

    def _on_selected(self, ref: str, serves: str) -> None:
        self.selected = (ref, serves)
        self._follow_selection()

    def _current(self) -> tuple[str, str | None]:
        """The ref the form and the code are for, and the NAME:N it is served as (None
        while it is not served)."""
        if self.running and self.selected is not None:
            return self.selected
        return self.version.currentText(), None

    def _follow_selection(self) -> None:
        ref, serves = self._current()
        if ref != self.try_it.ref:
            try:
                self.try_it.build(self.ws, ref)
            except StudioError as exc:  # deleted meanwhile, or damaged
                self.try_it.build(self.ws, "")
                self.try_it.show_error(str(exc))
            self.predict_btn.setEnabled(self.server.answering and bool(self.schema))
        self._update_code(ref, serves)

    def _update_code(self, ref: str, serves: str | None) -> None:
        if not ref:
            self.code.show_for(None)
            return
        url = self.server.url or f"http://127.0.0.1:{self.port.value() or 8080}"
        try:
            target = target_for(self.ws, serves or ref, url)
        except StudioError:
            self.code.show_for(None)
            return
        try:
            row = self.try_it.row() if self.schema else None
        except ValueError:
            row = None
        self.code.show_for(target, row)

    def _on_tab(self) -> None:
        if self.tabs.currentWidget() is self.code:
            self._follow_selection()  # the code carries the form's row as it is now

    def try_row(self) -> None:
        if not self.server.answering:
            return
        try:
            row = self.try_it.row()
        except ValueError as exc:
            self.try_it.show_error(str(exc))
            return
        ref, serves = self._current()
        if serves is not None:
            name, number = serves.rsplit(":", 1)
            path = f"/v1/models/{name}/versions/{number}:predict"
        else:
            path = f"/v1/models/{ref.split(':')[0]}:predict"
        sent = time.perf_counter()
        self.client.post(path, {"instances": [row]},
                         lambda status, doc: self._on_answer(status, doc, sent))

    def _on_answer(self, status: int, doc: dict[str, Any], sent: float) -> None:
        ms = (time.perf_counter() - sent) * 1000
        self.log.appendPlainText(f"POST :predict → {status or 'no answer'} in {ms:.1f} ms")
        if status != 200 or "predictions" not in doc:
            self.try_it.show_error(str(doc.get("error") or f"HTTP {status}"))
            return
        self.try_it.show_answer(doc)

