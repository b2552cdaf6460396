"""Set alias…: a small dialog naming the alias (``production`` unless changed). Nothing is
promoted on its own; a collapsed result is pointed at only after a question naming its
loss."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QVBoxLayout, QWidget

from studio.gui.pages.compress.text import collapse_text
from studio.gui.pages.evaluation.plain import label

DEFAULT_ALIAS = "production"


class AliasDialog(QDialog):
    def __init__(self, row: dict[str, Any], current: dict[str, str],
                 parent: QWidget | None = None) -> None:
        """``current`` maps the model's aliases to the versions they point at now."""
        super().__init__(parent)
        self.ref = str(row["version"])
        self.name = self.ref.partition(":")[0]
        self.current = current
        self.setWindowTitle(f"Set an alias on {self.ref}")
        self.edit = QLineEdit(DEFAULT_ALIAS)
        self.edit.selectAll()
        self.edit.textChanged.connect(self._say)
        self.where = label("", "muted")
        self.where.setWordWrap(True)
        box = QVBoxLayout(self)
        box.addWidget(label(f"Alias of {self.name} to point at {self.ref}:"))
        box.addWidget(self.edit)
        box.addWidget(self.where)
        if row.get("collapsed"):
            warning = label(collapse_text(row))
            warning.setWordWrap(True)
            warning.setStyleSheet("color: #d93025;")
            box.addWidget(warning)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Set alias")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        box.addWidget(self.buttons)
        self.setMinimumWidth(380)
        self._say(self.edit.text())

    def alias(self) -> str:
        return self.edit.text().strip()

    def _say(self, text: str) -> None:
        alias = text.strip()
        now = self.current.get(alias)
        self.where.setText(
            "" if not alias else
            f"{self.name}@{alias} points at {now} now; it will point at {self.ref}."
            if now and now != self.ref else
            f"{self.name}@{alias} already points at {self.ref}." if now else
            f"{self.name}@{alias} is new.")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(alias))
