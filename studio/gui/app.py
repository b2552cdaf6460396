"""Start the desktop app: ``studio`` with no arguments, or ``studio-gui``."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from studio.core.workspace import Workspace
from studio.gui.main_window import MainWindow
from studio.gui.theme import STYLE
from studio.resources import icon_path


def create_window(home: str | Path | None = None) -> MainWindow:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Model Studio")
    app.setOrganizationName("ModelStudio")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE)
    icon = icon_path("studio.svg")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    window = MainWindow(Workspace.open(home))
    window.fit_to_screen()
    return window


def main(home: str | Path | None = None) -> int:
    window = create_window(home)
    window.show()
    QTimer.singleShot(0, window.load)
    return QApplication.instance().exec()  # type: ignore[union-attr]


if __name__ == "__main__":
    raise SystemExit(main())
