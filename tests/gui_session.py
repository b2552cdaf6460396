"""A whole GUI session, driven as a person would, for tests/test_gui_soak.py (run as a child
process: an abort must fail the test, not end pytest). Prints SESSION OK and counts at the end.

import → train with live curves (thousands of events) while switching pages → serve and stop
→ train again. Any Qt warning about painting, timers or threads fails it.
"""

from __future__ import annotations

import os
import re
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

BAD = re.compile(r"QPainter|paint|thread|QObject::|QBasicTimer|Timers? cannot|QSocketNotifier",
                 re.IGNORECASE)
complaints: list[str] = []


def on_message(kind: QtMsgType, _context: object, message: str) -> None:
    if kind != QtMsgType.QtDebugMsg and BAD.search(message):
        complaints.append(message)
    print(f"qt: {message}", file=sys.stderr)


def wait_until(app: QApplication, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def main(home: str, sample: str, epochs: int) -> int:
    qInstallMessageHandler(on_message)
    from studio.gui.app import create_window

    window = create_window(home)
    app = QApplication.instance()
    window.resize(1280, 800)
    window.show()
    window.load()
    events = 0

    def count(batch: list) -> None:
        nonlocal events
        events += len(batch)

    window.import_paths([__import__("pathlib").Path(sample)])
    wait_until(app, lambda: bool(window.datasets.profile), 120, "the dataset's profile")
    window.datasets.set_target("species")
    form = window.datasets.form
    # one family for every epoch asked: no early stopping, no budget to end it sooner
    form.family.setCurrentIndex(form.family.findData("mlp"))
    form.set_knob("epochs", epochs)
    form.set_knob("patience", 0)
    form.budget.setValue(600)
    wait_until(app, window.datasets.train_btn.isEnabled, 30, "the Train button")

    none_before = sys.getrefcount(None)
    for run in (1, 2):
        window.datasets.train_btn.click()
        window.training.job.events.connect(count)
        page = 0
        while window.training.running:  # a person looks around while it trains
            page = (page + 1) % window.stack.count()
            window.nav.setCurrentRow(page)
            end = time.monotonic() + 0.25
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.01)
        wait_until(app, lambda: "Registered" in window.training.result.text(), 60,
                   f"run {run} to register")
        if run == 1:
            window.serving.port.setValue(0)
            window.go(window.models)
            window.models.serve_btn.click()
            wait_until(app, window.serving.predict_btn.isEnabled, 60, "the server")
            window.serving.predict_btn.click()
            wait_until(app, lambda: "Predicted" in window.serving.answer_text(), 30,
                       "an answer")
            window.serving.stop()
            wait_until(app, lambda: not window.serving.running, 30, "the server to stop")
            window.go(window.datasets)
            window.datasets.form.set_knob("epochs", max(20, epochs // 4))
    window.close()
    app.processEvents()
    lost = none_before - sys.getrefcount(None)
    print(f"events {events} none_lost {lost} complaints {len(complaints)}")
    for c in complaints:
        print(f"COMPLAINT {c}")
    if complaints or lost > 1000:
        return 1
    print("SESSION OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
