"""A whole GUI session in a child process: import, train with live curves for thousands of
events while pages switch, serve and stop, train again; it exits 0 with no Qt complaint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PENGUINS

SESSION = Path(__file__).with_name("gui_session.py")


@pytest.mark.timeout(420)
def test_a_long_gui_session_survives(tmp_path):
    out = subprocess.run([sys.executable, str(SESSION), str(tmp_path / "ws"), str(PENGUINS),
                          "500"], capture_output=True, text=True, timeout=400,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    assert "SESSION OK" in out.stdout
    events = int(out.stdout.split("events ")[1].split()[0])
    assert events >= 2000, out.stdout
