"""Every page fits a small laptop screen: at 1024×700 no widget sticks out of its parent and
no button is squeezed below the size its text needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QComboBox,
    QWidget,
)

from studio.gui.app import create_window


def clipped(root: QWidget) -> list[str]:
    """Visible widgets outside their parent's rectangle, and buttons below their size hint."""
    problems: list[str] = []

    def walk(widget: QWidget) -> None:
        for child in widget.findChildren(QWidget, options=_direct()):
            if not child.isVisible() or child.isWindow():
                continue
            name = f"{type(child).__name__}({_label(child)}) in {type(widget).__name__}"
            if not widget.rect().contains(child.geometry()):
                problems.append(f"{name}: {child.geometry()} outside {widget.rect()}")
            if isinstance(child, QAbstractButton | QComboBox):
                hint = child.minimumSizeHint()
                if child.width() < hint.width() or child.height() < hint.height():
                    problems.append(f"{name}: {child.size()} below its minimum {hint}")
            if isinstance(widget, QAbstractScrollArea) and child is widget.viewport():
                continue  # what scrolls may be larger than the viewport: that is scrolling
            walk(child)

    walk(root)
    return problems


def _direct():
    from PySide6.QtCore import Qt

    return Qt.FindChildOption.FindDirectChildrenOnly


def _label(w: QWidget) -> str:
    text = getattr(w, "text", None)
    return text() if callable(text) and isinstance(text(), str) else w.objectName()


@pytest.fixture
def small_window(qtbot, trained_home):
    w = create_window(trained_home)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    w.load()
    qtbot.waitUntil(lambda: bool(w.datasets.profile), timeout=60_000)
    yield w
    w.close()


def test_every_page_fits_1024_by_700(small_window, qtbot):
    w = small_window
    assert (w.width(), w.height()) == (1024, 700), "the window's minimum size is too big"
    for i in range(w.stack.count()):
        w.nav.setCurrentRow(i)
        QApplication.processEvents()
        qtbot.wait(50)
        page = w.stack.currentWidget()
        assert clipped(w) == [], f"page {i} ({type(page).__name__})"
    for button in (w.datasets.train_btn, w.models.serve_btn, w.training.stop_btn):
        assert button.width() >= button.minimumSizeHint().width()


SCREEN_CHILD = r"""
import sys
from studio.gui.app import create_window
w = create_window(sys.argv[1])
w.show()
free, frame = w.screen().availableGeometry(), w.frameGeometry()
print("FITS", free.contains(frame), frame.width(), frame.height(), free.width(), free.height())
"""


@pytest.mark.parametrize("screen", [(1280, 800), (1024, 700), (1920, 1080)])
def test_the_window_opens_inside_the_screen(tmp_path, screen):
    """On a 1280×800 laptop the status bar stays on screen: the window leaves room for the
    title bar and never asks for more than the screen has."""
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0,
                                               "width": screen[0], "height": screen[1]}]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
    out = subprocess.run([sys.executable, "-c", SCREEN_CHILD, str(tmp_path / "ws")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    fits, width, height, *_ = out.stdout.split("FITS")[1].split()
    assert fits == "True", out.stdout
    assert int(height) <= screen[1] - 32  # room for a title bar above
    assert min(1280, screen[0] - 16) <= int(width) <= screen[0]
