"""User text (labels, column names) shown as text, never as markup: Qt guesses that a string
starting with a tag is rich text in labels and tooltips, and pyqtgraph titles are HTML."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from studio.gui.widgets.elided_label import ElidedLabel


def tip(text: str) -> str:
    """A tooltip that shows ``text`` literally, line breaks kept."""
    return "<qt>" + html.escape(text, quote=False).replace("\n", "<br>") + "</qt>"


def label(text: str = "", name: str | None = None, parent: QWidget | None = None) -> QLabel:
    widget = QLabel(text, parent)
    widget.setTextFormat(Qt.TextFormat.PlainText)
    if name:
        widget.setObjectName(name)
    return widget


class PlainElided(ElidedLabel):
    """One line that gives up width; the whole text, literally, in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(tip(text))


def short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
