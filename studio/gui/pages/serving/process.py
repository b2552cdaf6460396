"""The `studio serve` process the Serving page runs: started, found, watched, stopped.

The page learns where the server listens from the registry's ``servers`` table (the row the
process announces once its port is bound, keyed by its pid), not from what it prints, then
waits for ``/v2/health/ready``. A process that ends without being asked to says so at once
(QProcess reports the exit as it happens), with the last lines it wrote to stderr.
"""

from __future__ import annotations

import collections
import os
import sys
import time

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, QUrl, Signal
from PySide6.QtNetwork import QNetworkAccessManager, QNetworkReply, QNetworkRequest

from studio.core.registry import servers
from studio.core.workspace import Workspace
from studio.jobs.runner import PROJECT_ROOT

POLL_MS = 150
READY_TIMEOUT_S = 30.0
STOP_GRACE_MS = 5000
KEPT_LINES = 200


class ServerProcess(QObject):
    ready = Signal(str)  # the URL, once the server answers
    ended = Signal(bool, str)  # asked to stop?, what happened (one sentence)
    output = Signal(str)  # a line the server wrote to stderr

    def __init__(self, ws: Workspace, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ws = ws
        self.proc: QProcess | None = None
        self.url: str | None = None
        self.refs: list[str] = []
        self.lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        self._asked_to_stop = False
        self._started_at = 0.0
        self._pid = 0
        self.net = QNetworkAccessManager(self)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self.proc is not None

    @property
    def answering(self) -> bool:
        return self.running and self.url is not None and not self._timer.isActive()

    def start(self, refs: list[str], port: int) -> None:
        if self.proc is not None:
            return
        self.refs, self.url = list(refs), None
        self._asked_to_stop = False
        self.lines.clear()
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONPATH", os.pathsep.join(
            [str(PROJECT_ROOT)] + ([env.value("PYTHONPATH")] if env.contains("PYTHONPATH")
                                   else [])))
        env.insert("STUDIO_NO_NOTES", "1")  # notes for a person are the app's to show
        env.insert("PYTHONSAFEPATH", "1")  # the working folder shadows no library
        proc.setProcessEnvironment(env)
        proc.setStandardOutputFile(QProcess.nullDevice())  # the registry says where it is
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.proc = proc
        self._started_at = time.monotonic()
        proc.start(sys.executable, ["-m", "studio", "--home", str(self.ws.root), "serve",
                                    *refs, "--host", "127.0.0.1", "--port", str(port)])
        self._pid = int(proc.processId())
        self._timer.start()

    def stop(self, wait: bool = False) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then a kill if it lingers. Only closing
        the window waits; otherwise the GUI thread never blocks on it."""
        if self.proc is None:
            return
        self._asked_to_stop = True
        self._timer.stop()
        proc = self.proc
        proc.terminate()
        if wait:
            if not proc.waitForFinished(STOP_GRACE_MS):
                proc.kill()
                proc.waitForFinished(2000)
        else:
            # proc as context: the timer dies with it; kill() on an ended process is a no-op
            QTimer.singleShot(STOP_GRACE_MS, proc, proc.kill)

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    # -- finding it and waiting for it ----------------------------------------------------

    def _poll(self) -> None:
        if self.proc is None:
            self._timer.stop()
            return
        if time.monotonic() - self._started_at > READY_TIMEOUT_S:
            self._timer.stop()
            self.lines.append("the server did not become ready in time")
            self.stop()
            return
        if self.url is None:
            self.url = servers.url_of(self.ws, self._pid)
            if self.url is None:
                return
        reply = self.net.get(QNetworkRequest(QUrl(self.url + "/v2/health/ready")))
        reply.finished.connect(lambda: self._on_ready_reply(reply))

    def _on_ready_reply(self, reply: QNetworkReply) -> None:
        ok = reply.error() == QNetworkReply.NetworkError.NoError
        reply.deleteLater()
        if ok and self._timer.isActive() and self.url is not None:
            self._timer.stop()
            self.ready.emit(self.url)

    def _on_stderr(self) -> None:
        if self.proc is None:
            return
        text = bytes(self.proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.lines.append(line)
                self.output.emit(line)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_stderr()
        self._timer.stop()
        asked = self._asked_to_stop
        if status == QProcess.ExitStatus.CrashExit and not asked:
            what = "was killed"
        elif code != 0 and not asked:
            what = f"exited with code {code}"
        else:
            what = "stopped"
        detail = self.last_line() if not asked else ""
        if self.proc is not None:
            self.proc.deleteLater()
        self.proc, self.url = None, None
        self.ended.emit(asked, what + (f": {detail}" if detail else ""))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart or self.proc is None:
            return  # a crash also ends in finished, which says so
        self._timer.stop()
        self.proc.deleteLater()
        self.proc, self.url = None, None
        self.ended.emit(False, f"could not start: {sys.executable} did not run")
