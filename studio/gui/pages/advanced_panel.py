"""The Train form's Advanced panel: the knobs every family shares, then one family's own,
all generated from the families' parameter lists. Only what the person changed goes into
the spec: a common knob as its TrainSpec field or a bare param ("patience"), a family's own
as "family.key", which wins over the common one for that family."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import InputError
from studio.core.training.families.base import Family, Param
from studio.core.training.spec import TrainSpec
from studio.gui.widgets.knob import INT_LIMIT, Knob, label
from studio.gui.worker import run_in_thread

# The shared loop's knobs, in the order a person tunes them; those no family has are left out.
COMMON = ("epochs", "batch_size", "learning_rate", "schedule", "optimizer", "weight_decay",
          "hidden", "dropout", "patience", "class_weights", "label_smoothing")
SPEC_FIELDS = {f.name for f in fields(TrainSpec)}  # the rest go in as params
RUN_KNOBS = (
    Param("seed", 0, "int", "Seeds the split and the training: the same seed trains the "
          "same model.", 0, INT_LIMIT),
    Param("device", "auto", "str", "Where the networks train: auto takes a CUDA GPU when "
          "there is one, else Apple's MPS, else the CPU.", choices=("auto", "cpu", "cuda", "mps")),
)
RUN_NAMES = {p.name for p in RUN_KNOBS}
COLUMNS = 3  # label + editor pairs per row: three fit a 1024-pixel window
LABELS = {"patience": "Early-stop patience", "hidden": "Hidden sizes"}


class AdvancedPanel(QTabWidget):
    """A tab of the common knobs, then a tab per family (greyed out where it does not
    train); each tab scrolls when its knobs need more height than the panel has."""

    changed = Signal()  # any knob edited

    def __init__(self, families: list[Family], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.families = families
        self._chosen = "auto"
        self._fitting = [f.name for f in families]
        self.common: dict[str, Knob] = {}
        for name in COMMON:
            having = [(f, p) for f in families for p in f.params if p.name == name]
            if having:
                self.common[name] = Knob(having[0][1], {f.name: p.default for f, p in having},
                                         self.changed.emit)
        for param in RUN_KNOBS:
            self.common[param.name] = Knob(param, on_change=self.changed.emit)
        self.own: dict[str, dict[str, Knob]] = {
            f.name: {p.name: Knob(p, on_change=self.changed.emit) for p in f.params}
            for f in families}
        self.devices_note = QLabel("")
        self.devices_note.setObjectName("muted")
        self.devices_note.setWordWrap(True)
        self.devices_note.setTextFormat(Qt.TextFormat.PlainText)
        self._devices_asked = False
        self.addTab(_scrolled(self.common, self.devices_note), "Every family")
        self.setTabToolTip(0, "Knobs every family that has them uses; “default” is each "
                              "family's own")
        for f in families:
            self.addTab(_scrolled(self.own[f.name]), f.title)

    def set_families(self, reasons: dict[str, str | None], chosen: str) -> None:
        """Which families fit (None) or why not, and the one chosen ("auto": every one that
        fits). A common knob none of the training families has is greyed out, and so are
        the tabs of families that do not train."""
        self._fitting = [name for name, reason in reasons.items() if reason is None]
        self._chosen = chosen
        training = self.training()
        for name, knob in self.common.items():
            having = [f for f in training if name in self.own[f]]
            knob.widget.setEnabled(name in RUN_NAMES or bool(having))
            if having:
                knob.prefer(having[0])
        for i, f in enumerate(self.families, start=1):
            self.setTabEnabled(i, f.name in training)
            if reasons.get(f.name):
                tip = f"Does not fit: {reasons[f.name]}"
            elif f.name not in training:
                tip = f"Not trained: this run trains {chosen} only"
            else:
                tip = f"{f.description} These win over “Every family” for the {f.name}."
            self.setTabToolTip(i, tip)
        if not self.isTabEnabled(self.currentIndex()):
            self.setCurrentIndex(0)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._devices_asked:  # once: torch takes seconds to look, in its own process
            self._devices_asked = True
            self.devices_note.setText("Looking for devices…")
            run_in_thread(list_devices, self._on_devices, self._on_devices_failed)

    def _on_devices(self, found: list[dict[str, Any]]) -> None:
        from studio.core.printable import human_bytes

        lines = [f"{d['name']}: {d['title']}"
                 + (f", {human_bytes(d['memory_bytes'])}" if d.get("memory_bytes") else "")
                 + (f" ({human_bytes(d['free_bytes'])} free)" if d.get("free_bytes") else "")
                 + f"; {d['detail']}" for d in found]
        text = "Devices here (auto takes the first): " + " · ".join(lines)
        self.devices_note.setText(text)
        self.common["device"].widget.setToolTip(text)

    def _on_devices_failed(self, error: str) -> None:
        self.devices_note.setText(f"Could not list the devices: {error}")

    def training(self) -> list[str]:
        """The families a run with these choices trains."""
        return [self._chosen] if self._chosen != "auto" else list(self._fitting)

    def show_family(self, name: str) -> None:
        self.setCurrentIndex(1 + [f.name for f in self.families].index(name))

    def spec_fields(self) -> dict[str, Any]:
        """The changed knobs as TrainSpec fields; InputError for one typed halfway."""
        out: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for name, knob in self.common.items():
            value = knob.value()
            if value is None or not knob.widget.isEnabled():
                continue
            if name in SPEC_FIELDS:
                out[name] = value
            else:
                params[name] = value
        for family in self.training():
            for name, knob in self.own[family].items():
                value = knob.value()
                if value is not None:
                    params[f"{family}.{name}"] = value
        if params:
            out["params"] = params
        return out

    def changed_count(self) -> int:
        """Knobs that differ from their defaults (and will be used)."""
        try:
            fields_ = self.spec_fields()
        except InputError:  # a value typed halfway still counts as a change
            return -1
        return len(fields_.get("params", {})) + len(fields_) - ("params" in fields_)

    def reset(self) -> None:
        for knob in [*self.common.values(), *(k for own in self.own.values()
                                              for k in own.values())]:
            knob.reset()


def list_devices() -> list[dict[str, Any]]:
    """``studio devices --json`` in a process of its own (the GUI never imports torch)."""
    import os

    from studio.jobs.runner import PROJECT_ROOT

    env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "studio", "devices", "--json"],
                          capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else f"exit code {done.returncode}")
    return list(json.loads(done.stdout)["devices"])


def _scrolled(knobs: dict[str, Knob], below: QWidget | None = None) -> QScrollArea:
    body = QWidget()
    outer = QVBoxLayout(body)
    outer.setContentsMargins(6, 6, 6, 6)
    outer.addLayout(_grid(knobs))
    if below is not None:
        outer.addWidget(below)
    outer.addStretch(1)
    area = QScrollArea()
    area.setWidget(body)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def _grid(knobs: dict[str, Knob]) -> QGridLayout:
    grid = QGridLayout()
    grid.setHorizontalSpacing(8)
    grid.setVerticalSpacing(4)
    for i, (name, knob) in enumerate(knobs.items()):
        row, col = divmod(i, COLUMNS)
        text = QLabel(LABELS.get(name, label(name)))
        text.setToolTip(knob.widget.toolTip())
        text.setBuddy(knob.widget)
        grid.addWidget(text, row, col * 2)
        grid.addWidget(knob.widget, row, col * 2 + 1)
        grid.setColumnStretch(col * 2 + 1, 1)
    return grid
