"""Serving: one click starts the local server for a version; a form tries one row on it."""

from __future__ import annotations

import html
import json
import os
import sys
import time
from typing import Any

from PySide6.QtCore import QByteArray, QProcess, QProcessEnvironment, Qt, QTimer, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.widgets.image_picker import ImagePicker
from studio.jobs.runner import PROJECT_ROOT

READY_POLL_MS = 150
READY_TIMEOUT_S = 30.0


class ServingPage(QWidget):
    message = Signal(str)
    server_state = Signal(str)  # "running" | "stopped"

    def __init__(self, ws: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.proc: QProcess | None = None
        self.url: str | None = None
        self.served_ref: str | None = None
        self._stdout = b""
        self._started_at = 0.0
        self.net = QNetworkAccessManager(self)
        self.schema: list[dict[str, Any]] = []
        self._form_ref: str | None = None  # the version the try-it form was built for
        self.fields: dict[str, QLineEdit | QComboBox | QPlainTextEdit | ImagePicker] = {}

        title = QLabel("Serving")
        title.setObjectName("pageTitle")
        self.version = QComboBox()
        self.version.setMinimumWidth(200)
        self.version.currentTextChanged.connect(self._build_form)
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(8080)
        self.port.setToolTip("0 picks a free port")
        self.start_btn = QPushButton("Start server ▶")
        self.start_btn.setObjectName("primary")
        self.start_btn.clicked.connect(self.toggle)
        self.status = QLabel("● Stopped")
        self.status.setObjectName("muted")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.status.setOpenExternalLinks(True)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addSpacing(16)
        top.addWidget(QLabel("Version"))
        top.addWidget(self.version)
        top.addWidget(QLabel("Port"))
        top.addWidget(self.port)
        top.addWidget(self.start_btn)
        top.addStretch(1)

        self.form = QFormLayout()
        form_box = QWidget()
        form_box.setLayout(self.form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_box)
        self.predict_btn = QPushButton("Predict")
        self.predict_btn.setObjectName("primary")
        self.predict_btn.setEnabled(False)
        self.predict_btn.clicked.connect(self.try_it)
        try_box = QGroupBox("Try it: one row")
        try_layout = QVBoxLayout(try_box)
        try_layout.addWidget(scroll, 1)
        try_layout.addWidget(self.predict_btn)

        self.answer = QLabel("Start the server, fill in a row and press Predict.")
        self.answer.setObjectName("answer")
        self.answer.setWordWrap(True)
        self.bars = QVBoxLayout()
        answer_box = QGroupBox("Answer")
        answer_layout = QVBoxLayout(answer_box)
        answer_layout.addWidget(self.answer)
        answer_layout.addLayout(self.bars)
        answer_layout.addStretch(1)

        middle = QHBoxLayout()
        middle.addWidget(try_box, 1)
        middle.addWidget(answer_box, 1)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(1000)
        self.log.setFixedHeight(120)
        self.log.setPlaceholderText("Server output and requests appear here.")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addLayout(middle, 1)
        layout.addWidget(QLabel("Traffic"))
        layout.addWidget(self.log)
        self._ready_timer = QTimer(self)
        self._ready_timer.setInterval(READY_POLL_MS)
        self._ready_timer.timeout.connect(self._poll_ready)

    # -- versions and the form --------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        from studio.core.registry.labels import aliases
        from studio.core.registry.listing import version_rows

        current = select or self.version.currentText()
        named = [f"{name}@{a}" for (name, _v), names in sorted(aliases(self.ws).items())
                 for a in names]
        refs = named + [r.ref for r in reversed(version_rows(self.ws))]
        self.version.blockSignals(True)
        self.version.clear()
        self.version.addItems(refs)
        if current in refs:
            self.version.setCurrentText(current)
        self.version.blockSignals(False)
        self.start_btn.setEnabled(bool(refs) or self.proc is not None)
        if self.version.currentText() != self._form_ref:  # what the person typed stays
            self._build_form(self.version.currentText())

    def _build_form(self, ref: str) -> None:
        self._form_ref = ref
        while self.form.rowCount():
            self.form.removeRow(0)
        self.fields.clear()
        if not ref:
            return
        from studio.core.registry import get_version

        version = get_version(self.ws, ref)
        manifest = version.manifest.raw
        if version.manifest.recipe is None:  # made elsewhere: tensors in, no columns to fill
            self.schema = []
            tensors = ", ".join(f"{t.name} {t.datatype} {list(t.shape)}"
                                for t in version.manifest.inputs) or "none (weights only)"
            note = QLabel(f"{version.ref} takes V2 tensors, not rows: {tensors}. Send them "
                          f"to /v2/models/{version.name}/infer.")
            note.setWordWrap(True)
            note.setTextFormat(Qt.TextFormat.PlainText)
            self.form.addRow(note)
            return
        recipe = {f["name"]: f for f in manifest["recipe"]["features"]}
        self.schema = manifest["input_schema"]
        for col in self.schema:
            widget: QLineEdit | QComboBox | QPlainTextEdit | ImagePicker
            if col["kind"] == "image":
                widget = ImagePicker()
            elif col["kind"] == "text":
                widget = QPlainTextEdit()
                widget.setPlaceholderText("some text, or empty for missing")
                widget.setFixedHeight(72)
            elif col["kind"] == "categorical":
                widget = QComboBox()
                widget.setEditable(True)
                widget.addItems(col["categories"])
            else:
                widget = QLineEdit()
                mean = recipe[col["name"]].get("mean")
                widget.setText(f"{mean:.4g}" if isinstance(mean, float) else "")
                widget.setPlaceholderText("a number, or empty for missing")
            self.fields[col["name"]] = widget
            self.form.addRow(col["name"], widget)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col in self.schema:
            w = self.fields[col["name"]]
            if isinstance(w, ImagePicker):
                out[col["name"]] = w.value()
                if out[col["name"]] is None:
                    raise ValueError(f"{col['name']}: choose an image first")
                continue
            text = (w.currentText() if isinstance(w, QComboBox) else
                    w.toPlainText() if isinstance(w, QPlainTextEdit) else w.text()).strip()
            if col["kind"] == "numeric":
                try:
                    out[col["name"]] = float(text) if text else None
                except ValueError:
                    raise ValueError(f"{col['name']}: {text!r} is not a number") from None
            else:
                out[col["name"]] = text or None
        return out

    # -- the server process -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def toggle(self) -> None:
        if self.proc is not None:
            self.stop()
        else:
            self.start()

    def start(self, ref: str | None = None) -> None:
        ref = ref or self.version.currentText()
        if not ref:
            self.message.emit("Train a model first: there is nothing to serve.")
            return
        if ref != self.version.currentText():
            self.version.setCurrentText(ref)
        self.served_ref = ref
        self._stdout = b""
        self.url = None
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONPATH", os.pathsep.join(
            [str(PROJECT_ROOT)] + ([env.value("PYTHONPATH")] if env.contains("PYTHONPATH")
                                   else [])))
        env.insert("STUDIO_NO_NOTES", "1")  # notes for a person are the app's to show
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_exit)
        self.proc = proc
        self._started_at = time.monotonic()
        proc.start(sys.executable, ["-m", "studio", "--home", str(self.ws.root), "serve", ref,
                                    "--host", "127.0.0.1", "--port", str(self.port.value()),
                                    "--json"])
        self.status.setText(f"● Starting {ref}…")
        self.start_btn.setText("Stop server ■")
        self.version.setEnabled(False)
        self.port.setEnabled(False)

    def stop(self, wait: bool = False) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then a kill if it lingers.

        Only closing the window waits; otherwise the GUI thread never blocks on it.
        """
        if self.proc is None:
            return
        self._ready_timer.stop()
        proc = self.proc
        proc.terminate()
        if wait:
            if not proc.waitForFinished(5000):
                proc.kill()
                proc.waitForFinished(2000)
        else:
            # proc as context: the timer dies with it; kill() on an ended process is a no-op
            QTimer.singleShot(5000, proc, proc.kill)

    def _on_stdout(self) -> None:
        assert self.proc is not None
        self._stdout += bytes(self.proc.readAllStandardOutput().data())
        if self.url is None:
            try:
                doc = json.loads(self._stdout)
            except ValueError:
                return  # the JSON document is not complete yet
            self.url = doc["url"]
            self._ready_timer.start()

    def _on_stderr(self) -> None:
        assert self.proc is not None
        text = bytes(self.proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.log.appendPlainText(line)

    def _poll_ready(self) -> None:
        if self.url is None:
            return
        if time.monotonic() - self._started_at > READY_TIMEOUT_S:
            self._ready_timer.stop()
            self.message.emit("The server did not become ready in time.")
            self.stop()
            return
        reply = self.net.get(QNetworkRequest(QUrl(self.url + "/v2/health/ready")))
        reply.finished.connect(lambda: self._on_ready_reply(reply))

    def _on_ready_reply(self, reply: QNetworkReply) -> None:
        ok = reply.error() == QNetworkReply.NetworkError.NoError
        reply.deleteLater()
        if ok and self._ready_timer.isActive():
            self._ready_timer.stop()
            self.status.setText(
                f"<span style='color:#188038'>●</span> Serving <b>{self.served_ref}</b> at "
                f"<a href='{self.url}/docs'>{self.url}</a> — V2: "
                f"<code>{self.url}/v2/models/{self.served_ref.split(':')[0]}/infer</code>")
            self.predict_btn.setEnabled(bool(self.schema))
            self.log.appendPlainText(f"ready at {self.url}")
            self.server_state.emit("running")

    def _on_exit(self, code: int, _status: Any) -> None:
        self._ready_timer.stop()
        if self.url is None and code != 0:
            err = self.log.toPlainText().strip().splitlines()
            self.message.emit("The server could not start: "
                              + (err[-1] if err else f"exit code {code}"))
        self.proc = None
        self.url = None
        self.status.setText("● Stopped")
        self.start_btn.setText("Start server ▶")
        self.predict_btn.setEnabled(False)
        self.version.setEnabled(True)
        self.port.setEnabled(True)
        self.server_state.emit("stopped")

    # -- try it -----------------------------------------------------------------------------

    def try_it(self) -> None:
        if self.url is None or self.served_ref is None:
            return
        try:
            row = self.row()
        except ValueError as exc:
            self.answer.setText(f"<span style='color:#d93025'>{html.escape(str(exc))}</span>")
            return
        name = self.served_ref.split(":")[0]
        request = QNetworkRequest(QUrl(f"{self.url}/v1/models/{name}:predict"))
        request.setHeader(QNetworkRequest.KnownHeaders.ContentTypeHeader, "application/json")
        body = json.dumps({"instances": [row]}).encode()
        sent = time.perf_counter()
        reply = self.net.post(request, QByteArray(body))
        reply.finished.connect(lambda: self._on_answer(reply, sent))

    def _on_answer(self, reply: QNetworkReply, sent: float) -> None:
        ms = (time.perf_counter() - sent) * 1000
        status = reply.attribute(QNetworkRequest.Attribute.HttpStatusCodeAttribute)
        data = bytes(reply.readAll().data())
        reply.deleteLater()
        self.log.appendPlainText(f"POST :predict → {status} in {ms:.1f} ms")
        try:
            doc = json.loads(data)
        except ValueError:
            doc = {"error": reply.errorString()}
        self._clear_bars()
        if status != 200 or "error" in doc:
            self.answer.setText(f"<span style='color:#d93025'>"
                                f"{html.escape(str(doc.get('error')))}</span>")
            return
        prediction = doc["predictions"][0]
        self.answer.setText(f"Predicted: <b style='font-size:16pt'>{html.escape(str(prediction))}"
                            f"</b>")
        for label, p in zip(doc.get("labels", []), (doc.get("probabilities") or [[]])[0],
                            strict=False):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setFormat(f"{label}  {p:.1%}")
            bar.setObjectName("probability")
            self.bars.addWidget(bar)

    def _clear_bars(self) -> None:
        while self.bars.count():
            item = self.bars.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def answer_text(self) -> str:
        return self.answer.text()
