"""The GUI process stays light: torch and onnxruntime never load in it."""

import subprocess
import sys

CODE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from studio.gui.app import create_window
w = create_window(sys.argv[1]); w.show(); w.load()
from PySide6.QtWidgets import QApplication
QApplication.processEvents()
heavy = [m for m in ("torch", "onnxruntime") if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def test_window_opens_without_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", CODE, str(tmp_path / "ws")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY:\n" in out.stdout or out.stdout.strip().endswith("HEAVY:")
