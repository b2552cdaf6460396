"""Every page fits a small laptop screen: at 1024×700 no widget sticks out of its parent and
no button is squeezed below the size its text needs."""

from __future__ import annotations

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


def test_the_window_opens_inside_the_screen(qtbot, tmp_path):
    w = create_window(tmp_path / "ws")
    qtbot.addWidget(w)
    w.show()
    screen = w.screen().availableGeometry()
    assert w.frameGeometry().width() <= screen.width()
    assert w.frameGeometry().height() <= screen.height()
    w.close()
