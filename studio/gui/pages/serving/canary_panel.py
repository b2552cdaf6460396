"""A canary while it runs: its share, the requests routed to the candidate, how often the two
versions agree on the rows compared (or how far apart a regression's values are), and the
two versions' latency over the last minute side by side; Canary… starts one (PUT
/admin/canary) and End canary ends it (DELETE /admin/canary/{ref})."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace import Workspace
from studio.gui.pages.serving.canary_dialog import (
    CanaryDialog,
    canary_key,
    candidates,
    primary_of,
)
from studio.gui.pages.serving.client import ServerClient

COLUMNS = 4  # version, its requests over the last minute, p50, p95
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class CanaryCard(QWidget):
    """One running canary, in four lines: the page is short at 1024×700 already."""

    end_clicked = Signal(str)  # the ref it shares

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.end_btn = QPushButton("End canary")
        self.end_btn.setToolTip(f"Send every request for {key} to its primary version again")
        self.end_btn.clicked.connect(lambda: self.end_clicked.emit(self.key))
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(2)
        grid.addWidget(self.title, 0, 0, 1, COLUMNS)
        grid.addWidget(self.end_btn, 0, COLUMNS, 2, 1, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.summary, 1, 0, 1, COLUMNS)
        self.cells: list[list[QLabel]] = []
        for i in range(2):  # the primary, the candidate: side by side, a row each
            row = []
            for j in range(COLUMNS):
                cell = QLabel()
                if j:
                    cell.setAlignment(RIGHT)
                grid.addWidget(cell, 2 + i, j)
                row.append(cell)
            self.cells.append(row)
        grid.setColumnStretch(0, 1)

    def show_report(self, report: dict[str, Any], primary: str | None,
                    windows: dict[str, dict[str, Any]]) -> None:
        candidate = report["candidate"]
        self.title.setText(f"Canary on <b>{html.escape(self.key)}</b>: "
                           f"{html.escape(candidate)} answers {report['percent']:g} %"
                           + (f", {html.escape(primary)} the rest" if primary else ""))
        self.summary.setText(summary(report))
        for cells, (ref, role) in zip(self.cells, ((primary, "primary"),
                                                   (candidate, "candidate")), strict=True):
            w = windows.get(ref or "", {})
            n = w.get("requests", 0)
            texts = [f"{ref or '?'} ({role})", f"{n:,} request{'s' if n != 1 else ''}",
                     f"p50 {_ms(w.get('p50_ms'))}", f"p95 {_ms(w.get('p95_ms'))}"]
            for cell, text in zip(cells, texts, strict=True):
                if cell.text() != text:
                    cell.setText(text)

    def latencies(self) -> list[list[str]]:
        """What the side-by-side rows show (version, requests in the last minute, p50,
        p95)."""
        return [[c.text() for c in row] for row in self.cells]


def summary(report: dict[str, Any]) -> str:
    """The routed requests and the comparison, in one line."""
    routed = f"{report['routed']:,} request{'s' if report['routed'] != 1 else ''} routed"
    compared = report.get("compared_rows", 0)
    if not compared:
        return f"{routed} · no rows compared yet"
    if "agreement" in report:
        said = f"the two agree on {report['agreement']:.1%} of {compared:,} rows compared"
    else:
        said = (f"mean absolute difference {report['mean_abs_difference']:.4g} over "
                f"{compared:,} rows compared")
    return f"{routed} · {said}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


class CanaryPanel(QFrame):
    message = Signal(str)  # an error a person must read

    def __init__(self, ws: Workspace, client: ServerClient,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canary")
        self.ws, self.client = ws, client
        self.cards: dict[str, CanaryCard] = {}
        self.running: dict[str, dict[str, Any]] = {}
        self.layout_ = QVBoxLayout(self)
        self.hide()

    # -- starting and ending --------------------------------------------------------------

    def choose(self, ref: str, refs: list[dict[str, str]]) -> None:
        """Canary… on a served row: ask for a candidate and a share, then start it."""
        key = canary_key(ref)
        primary = primary_of(key, refs)
        offered = candidates(self.ws, key.split("@")[0], primary)
        if not offered:
            self.message.emit(f"{key.split('@')[0]} has no other version to try as a canary: "
                              "train or import one first.")
            return
        dialog = CanaryDialog(key, primary, offered, self.running.get(key), self.window())
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.start(key, *dialog.choice())

    def start(self, key: str, candidate: str, percent: float) -> None:
        self.client.set_canary(key, candidate, percent,
                               lambda status, doc: self._on_started(key, status, doc))

    def _on_started(self, key: str, status: int, doc: dict[str, Any]) -> None:
        if status == 200:
            self.client.poll()  # shown at once, not at the next second
            return
        self.message.emit(f"Could not start the canary on {key}: "
                          f"{doc.get('error') or f'HTTP {status}'}")

    def end(self, key: str) -> None:
        card = self.cards.get(key)
        if card is not None:
            card.end_btn.setEnabled(False)
            card.end_btn.setText("Ending…")
        self.client.end_canary(key, lambda status, doc: self._on_ended(key, status, doc))

    def _on_ended(self, key: str, status: int, doc: dict[str, Any]) -> None:
        card = self.cards.get(key)
        if card is not None:
            card.end_btn.setEnabled(True)
            card.end_btn.setText("End canary")
        if status == 200:
            self.client.poll()
            return
        self.message.emit(f"Could not end the canary on {key}: "
                          f"{doc.get('error') or f'HTTP {status}'}")

    # -- the live comparison --------------------------------------------------------------

    def show_stats(self, doc: dict[str, Any]) -> None:
        """From an /admin/stats answer: a card per running canary; hidden when none runs."""
        canaries: dict[str, dict[str, Any]] = doc.get("canary") or {}
        self.running = canaries
        if set(canaries) != set(self.cards):
            for card in self.cards.values():
                card.deleteLater()
            self.cards = {}
            for key in sorted(canaries):
                card = self.cards[key] = CanaryCard(key)
                card.end_clicked.connect(self.end)
                self.layout_.addWidget(card)
        windows = {f"{m['model']}:{m['version']}": m.get("window") or {}
                   for m in doc.get("models", [])}
        refs = doc.get("refs", [])
        for key, report in canaries.items():
            self.cards[key].show_report(report, primary_of(key, refs), windows)
        self.setVisible(bool(canaries))

    def clear(self) -> None:
        self.show_stats({})
