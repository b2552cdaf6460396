"""Code to call the selected version from elsewhere: curl, Python requests, tritonclient,
each ready to copy."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.pages.serving.snippets import Target, Tensor, snippets

LANGUAGES = ("curl", "Python", "tritonclient")


class CodeView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.codes: dict[str, str] = {}
        self.tabs = QTabBar()
        for name in LANGUAGES:
            self.tabs.addTab(name)
        self.tabs.currentChanged.connect(lambda _i: self._show())
        self.copy_btn = QPushButton("Copy")
        self.copy_btn.setToolTip("Copy this code to the clipboard")
        self.copy_btn.clicked.connect(self.copy)
        self.about = QLabel()
        self.about.setObjectName("muted")
        self.about.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        top = QHBoxLayout()
        top.addWidget(self.tabs)
        top.addStretch(1)
        top.addWidget(self.copy_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.about)
        layout.addWidget(self.text, 1)
        self.show_for(None)

    def show_for(self, target: Target | None, row: dict[str, Any] | None = None) -> None:
        if target is None:
            self.codes = {}
            self.about.setText("Start the server: code to call the selected version appears "
                               "here.")
        else:
            self.codes = snippets(target, row)
            self.about.setText(f"Calls {target.name}:{target.version} at {target.url}.")
        self.copy_btn.setEnabled(bool(self.codes))
        self._show()

    def language(self) -> str:
        return LANGUAGES[self.tabs.currentIndex()]

    def code(self) -> str:
        return self.codes.get(self.language(), "")

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code())

    def _show(self) -> None:
        self.text.setPlainText(self.code())


def target_for(ws: Workspace, ref: str, url: str) -> Target:
    """What the snippets call for the version ``ref`` (StudioError when it is gone)."""
    from studio.core.registry import get_version

    version = get_version(ws, ref)
    m = version.manifest
    return Target(url=url, name=version.name, version=version.version,
                  inputs=tuple(Tensor(t.name, t.datatype, tuple(t.shape)) for t in m.inputs),
                  outputs=tuple(t.name for t in m.outputs),
                  columns=tuple(m.raw.get("input_schema") or ()) if m.recipe else None)
