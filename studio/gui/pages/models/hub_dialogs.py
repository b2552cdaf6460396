"""What a Hub pull or push needs to know: the repository, a revision or branch, and a token
when the Hub's saved login (``hf auth login``) or ``HF_TOKEN`` is not to be used."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from studio.gui.pages.evaluation.plain import label

# owner/name or a bare name: the Hub's own rule, before a round trip says it
REPO_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
TOKEN_HINT = "empty: HF_TOKEN, or the login saved by `hf auth login`"


class _HubDialog(QDialog):
    def __init__(self, title: str, intro: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.repo = QLineEdit()
        self.repo.setPlaceholderText("owner/name")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText(TOKEN_HINT)
        self.form = QFormLayout()
        self.form.addRow("Repository", self.repo)
        self.error = label("")
        self.error.setStyleSheet("color: #d93025;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        intro_label = label(intro, "muted")
        intro_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro_label)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

    def _check(self) -> None:
        repo = self.repo.text().strip()
        if not REPO_RE.match(repo):
            self.error.setText(f"“{repo}” is no Hub repository name: write owner/name "
                               "(letters, digits, '.', '_' or '-')" if repo else
                               "Name the repository: owner/name")
            self.error.show()
            return
        self.accept()

    def _optional(self, edit: QLineEdit) -> str | None:
        return edit.text().strip() or None


class PullDialog(_HubDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Pull from the Hugging Face Hub",
                         "Downloads through the Hub's local cache (a pull made before works "
                         "offline), checks every file's hash, and registers the model as a new "
                         "version. Pickled weights are refused.", parent)
        self.revision = QLineEdit()
        self.revision.setPlaceholderText("main")
        self.name = QLineEdit()
        self.name.setPlaceholderText("from the repository's name")
        self.form.addRow("Revision", self.revision)
        self.form.addRow("Model name", self.name)
        self.form.addRow("Token", self.token)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Pull")

    def values(self) -> dict[str, Any]:
        return {"repo_id": self.repo.text().strip(), "revision": self._optional(self.revision),
                "name": self._optional(self.name), "token": self._optional(self.token)}


class PushDialog(_HubDialog):
    def __init__(self, ref: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Push {ref} to the Hugging Face Hub",
                         f"Sends {ref}'s graph, weights, card and manifest in one commit; a "
                         "pull of the repository rebuilds the version with its lineage.",
                         parent)
        self.private = QCheckBox("Create it private (when it does not exist yet)")
        self.private.setChecked(True)
        self.branch = QLineEdit()
        self.branch.setPlaceholderText("main")
        self.form.addRow("", self.private)
        self.form.addRow("Branch", self.branch)
        self.form.addRow("Token", self.token)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Push")

    def values(self) -> dict[str, Any]:
        return {"repo_id": self.repo.text().strip(), "private": self.private.isChecked(),
                "revision": self._optional(self.branch), "token": self._optional(self.token)}
