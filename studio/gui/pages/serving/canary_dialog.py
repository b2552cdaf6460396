"""Canary…: which version of the same model answers a share of a served ref's requests,
and how large a share."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace

DEFAULT_PERCENT = 10


def canary_key(ref: str) -> str:
    """What a canary shares for a served row: NAME@ALIAS as it is; for NAME:N, plain NAME
    (a request naming its version is never rerouted)."""
    return ref if "@" in ref else ref.split(":")[0]


def primary_of(key: str, refs: list[dict[str, str]]) -> str | None:
    """NAME:N that answers ``key`` now, as the server picks it: the version an alias is
    served as, or for NAME the newest version asked for."""
    if "@" in key:
        return next((r["serves"] for r in refs if r["ref"] == key), None)
    numbers = [int(r["serves"].rsplit(":", 1)[1]) for r in refs
               if r["serves"].rsplit(":", 1)[0] == key]
    return f"{key}:{max(numbers)}" if numbers else None


def candidates(ws: Workspace, name: str, primary: str | None) -> list[tuple[str, str]]:
    """(ref, what the list shows) of each version of ``name`` but the primary, newest first."""
    from studio.core.registry.listing import version_rows

    out = []
    for row in reversed(version_rows(ws, name)):
        if row.ref == primary:
            continue
        facts = [row.family or row.source or ""]
        if row.metric and row.score is not None:
            facts.append(f"{row.metric} {row.score:.3f}")
        if row.aliases:
            facts.append("@" + ", @".join(row.aliases))
        out.append((row.ref, " · ".join([row.ref, *[f for f in facts if f]])))
    return out


class CanaryDialog(QDialog):
    def __init__(self, key: str, primary: str | None, offered: list[tuple[str, str]],
                 running: dict[str, Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Canary on {key}")
        answered = f" (answered by {html.escape(primary)} now)" if primary else ""
        intro = QLabel(f"Send a share of the requests for <b>{html.escape(key)}</b>{answered} "
                       "to another version, and compare its answers and latency with the "
                       "primary's. "
                       "Requests that name a version (NAME:N) are never rerouted.")
        intro.setWordWrap(True)
        self.candidate = QComboBox()
        for ref, text in offered:
            self.candidate.addItem(text, ref)
        self.percent = QSpinBox()
        self.percent.setRange(1, 100)
        self.percent.setSuffix(" %")
        self.percent.setValue(DEFAULT_PERCENT)
        self.percent.setToolTip("The share of the requests for this ref the candidate answers")
        if running:  # a canary runs already: start from it (the server replaces it)
            index = self.candidate.findData(running.get("candidate"))
            if index >= 0:
                self.candidate.setCurrentIndex(index)
            self.percent.setValue(max(1, min(100, round(running.get("percent", 10)))))
        form = QFormLayout()
        form.addRow("Candidate", self.candidate)
        form.addRow("Share of requests", self.percent)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Change canary" if running else "Start canary")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)

    def choice(self) -> tuple[str, int]:
        """The candidate's NAME:N and the share in percent."""
        return str(self.candidate.currentData()), self.percent.value()
