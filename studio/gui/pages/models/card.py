"""A version's model card: shown as Markdown only (raw HTML in it is text, links are not
followed, nothing is loaded from disk or the network), and edited beside a live preview."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QFontDatabase, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.workspace import Workspace
from studio.gui.pages.evaluation.plain import label

# GitHub's tables and lists, without its HTML: a card is user text and may not inject markup.
FEATURES = (QTextDocument.MarkdownFeature.MarkdownDialectGitHub
            | QTextDocument.MarkdownFeature.MarkdownNoHTML)


class MarkdownView(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def set_markdown(self, text: str) -> None:
        self.document().setMarkdown(text, FEATURES)
        # another version's card reads from its title: the cursor, not the scroll bar, since
        # the new text is laid out (and the bar's range known) only later
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def loadResource(self, _kind: int, _name: QUrl) -> Any:
        return None  # an image in a card never reads a file or asks the network


def card_markdown(ws: Workspace, version: Any) -> str:
    """The card as last edited, and the test confusion matrix when the version has one."""
    from studio.core.registry.labels import card_text

    return card_text(ws, version) + confusion_markdown(version.manifest.raw)


def confusion_markdown(manifest: dict[str, Any]) -> str:
    test = (manifest.get("metrics") or {}).get("test") or {}
    labels = manifest.get("labels")
    if "confusion" not in test or not labels:
        return ""
    from studio.core.training.card import md

    labels = [md(name) for name in labels]
    head = "| true \\ predicted | " + " | ".join(labels) + " |\n"
    head += "|---" * (len(labels) + 1) + "|\n"
    rows = "".join(f"| **{name}** | " + " | ".join(str(n) for n in row) + " |\n"
                   for name, row in zip(labels, test["confusion"], strict=True))
    return "\n\n## Confusion matrix (test split)\n\n" + head + rows


def card_window(ws: Workspace, ref: str, parent: QWidget) -> QDialog:
    """The card of ``ref`` in a window of its own."""
    from studio.core.registry import get_version

    dialog = QDialog(parent)
    dialog.setWindowTitle(f"Model card — {ref}")
    dialog.resize(720, 640)
    view = MarkdownView()
    view.set_markdown(card_markdown(ws, get_version(ws, ref)))
    QVBoxLayout(dialog).addWidget(view)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


class CardEditor(QDialog):
    """Markdown on the left, what it will look like on the right; Save stores it through
    ``labels.set_card`` (the card the version was made with stays in its files)."""

    saved = Signal(str)  # the version's ref

    def __init__(self, ws: Workspace, ref: str, text: str, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.ws, self.ref = ws, ref
        self.setWindowTitle(f"Edit the model card — {ref}")
        self.editor = QPlainTextEdit(text)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.preview = MarkdownView()
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self._update_preview)
        self.editor.textChanged.connect(self._debounce.start)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.editor)
        split.addWidget(self.preview)
        self.error = label("", "error")
        self.error.setStyleSheet("color: #d93025;")
        self.error.setWordWrap(True)
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.save_btn = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Markdown. HTML is shown as text; the card the version was "
                               "made with is kept in its files.", "muted"))
        layout.addWidget(split, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self._update_preview()
        if parent is not None:
            top = parent.window()
            self.resize(min(960, top.width() - 40), min(640, top.height() - 40))

    @classmethod
    def for_version(cls, ws: Workspace, ref: str, parent: QWidget) -> CardEditor:
        """Opened (window-modal, not blocking) on the card as last edited."""
        from studio.core.registry import get_version
        from studio.core.registry.labels import card_text

        editor = cls(ws, ref, card_text(ws, get_version(ws, ref)), parent)
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        editor.open()
        return editor

    def _update_preview(self) -> None:
        self.preview.set_markdown(self.editor.toPlainText())

    def save(self) -> None:
        from studio.core.registry.labels import set_card

        try:
            set_card(self.ws, self.ref, self.editor.toPlainText())
        except StudioError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.saved.emit(self.ref)
        self.accept()
