"""Live curves and their axes painted for thousands of frames leave ``None`` alone.

PySide6-Essentials 6.12.0 on CPython 3.11 dropped a reference to ``None`` on every
``QPainter.save()/restore()``; after a few minutes of live training curves the interpreter
aborted with "none_dealloc". The painting runs in a child process, so an abort fails this test
instead of taking pytest down with it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = r"""
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
app = QApplication([])
from studio.gui.widgets.live_curve import LiveCurve

curve = LiveCurve("Loss", "loss")
curve.add_series("train", "train")
curve.add_series("val", "validation")
curve.resize(320, 200)
curve.show()

def frame(i):
    if i % 200 == 0:  # a new run: the curve starts again, as between trainings
        curve.clear_data()
    curve.append("train", i, 1.0 / (1 + i))
    curve.append("val", i, 1.2 / (1 + i) + 0.01 * (i % 7))
    curve.flush()
    curve.grab()  # a full paint: plot, both axes with their ticks and labels, legend

frames = int(sys.argv[1])
for i in range(50):  # caches and lazily created objects first
    frame(i)
before = sys.getrefcount(None)
for i in range(50, 50 + frames):
    frame(i)
    if i % 250 == 0:
        app.processEvents()
print("NONE_DELTA", sys.getrefcount(None) - before, flush=True)
"""


@pytest.mark.timeout(240)
def test_painting_live_curves_keeps_none_referenced():
    frames = 4000
    out = subprocess.run([sys.executable, "-c", CHILD, str(frames)], capture_output=True,
                         text=True, timeout=220)
    assert out.returncode == 0, f"the painting process died ({out.returncode}): {out.stderr}"
    delta = int(out.stdout.split("NONE_DELTA")[1].split()[0])
    # A leak loses at least one reference per frame; a healthy binding stays near zero.
    assert delta > -frames // 10, f"None lost {-delta} references over {frames} frames"
