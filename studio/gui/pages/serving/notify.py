"""A desktop notification: the system tray's balloon where the desktop has a tray, else a
line for the main window's status bar (the page's warning line says it too)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle, QSystemTrayIcon

SHOWN_MS = 10_000


class Notifier(QObject):
    notified = Signal(str, str)  # title, text: each notification, however it was shown
    fallback = Signal(str)  # the text, where there is no tray to show it

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray: QSystemTrayIcon | None = None

    def notify(self, title: str, text: str) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable():
            tray = self._tray()
            tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Warning, SHOWN_MS)
        else:
            self.fallback.emit(f"{title}: {text}")
        self.notified.emit(title, text)

    def _tray(self) -> QSystemTrayIcon:
        """Made on first use: an icon in the tray only once there is something to say."""
        if self.tray is None:
            app = QApplication.instance()
            icon = app.windowIcon() if isinstance(app, QApplication) else QIcon()
            if icon.isNull() and isinstance(app, QApplication):
                icon = app.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("Model Studio")
            self.tray.show()
        return self.tray
