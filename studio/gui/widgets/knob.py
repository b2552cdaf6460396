"""One editor per family parameter (a :class:`~studio.core.training.families.base.Param`):
the default shown, the help as tooltip, the bounds kept by the widget, and ``value()`` None
while the person has not changed it, so only what they chose reaches the spec.

A knob whose default differs between families (epochs: 100 for linear, 40 for the mlp)
starts at "default", meaning each family's own."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from studio.core.errors import InputError
from studio.core.training.params import Param

DEFAULT = "default"
INT_LIMIT = 2**31 - 1  # a QSpinBox holds a C int


def label(name: str) -> str:
    """``batch_size`` → "Batch size"."""
    return name.replace("_", " ").capitalize()


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Knob:
    """An editor for ``param``. ``defaults`` maps each family that has the knob to its
    default; one shared default is shown as the value, several make "default" the first
    choice. ``on_change`` is called after every edit."""

    def __init__(self, param: Param, defaults: Mapping[str, Any] | None = None,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.param = param
        self.defaults = dict(defaults or {"": param.default})
        shared = {repr(v) for v in self.defaults.values()}
        self.optional = len(shared) > 1  # "default" stands for each family's own
        self.default = None if self.optional else next(iter(self.defaults.values()))
        self.widget = self._build(on_change)
        self.widget.setToolTip(self._tooltip())
        self.widget.setObjectName(f"knob-{param.name}")
        self.reset()

    def _tooltip(self) -> str:
        p = self.param
        tip = p.help
        if p.low is not None and p.high is not None and p.kind in ("int", "float", "ints"):
            tip += f"\nFrom {p.low:g} to {p.high:g}."
        if self.optional:
            tip += "\nDefault: " + ", ".join(f"{family} {text_of(v)}"
                                             for family, v in self.defaults.items())
        else:
            tip += f"\nDefault: {text_of(self.default)}"
        return tip

    def _build(self, on_change: Callable[[], None]) -> QWidget:
        p = self.param
        start = next(iter(self.defaults.values()))  # where a step away from "default" lands
        if p.kind == "bool" or (p.kind == "str" and p.choices):
            if p.kind == "bool" and not self.optional:
                box = QCheckBox()
                box.toggled.connect(lambda _v: on_change())
                return box
            combo = QComboBox()
            if self.optional:
                combo.addItem(DEFAULT, None)
            for choice in (("yes", True), ("no", False)) if p.kind == "bool" else \
                    ((c, c) for c in p.choices):
                combo.addItem(*choice)
            combo.currentIndexChanged.connect(lambda _i: on_change())
            return combo
        if p.kind == "int":
            spin: QAbstractSpinBox = _IntSpin(p, self.optional, start)
        elif p.kind == "float":
            spin = _FloatSpin(p, self.optional, start)
        else:  # "ints", or a free "str"
            edit = QLineEdit()
            edit.setPlaceholderText(DEFAULT if self.optional else text_of(self.default))
            if p.kind == "ints":
                edit.setValidator(_IntsValidator(p, edit))
            edit.textChanged.connect(lambda _t: on_change())
            return edit
        spin.valueChanged.connect(lambda _v: on_change())
        spin.setMinimumWidth(90)
        return spin

    def reset(self) -> None:
        w, default = self.widget, self.default
        if isinstance(w, QCheckBox):
            w.setChecked(bool(default))
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(0 if self.optional else max(0, w.findData(default)))
        elif isinstance(w, QLineEdit):
            w.clear()
        elif isinstance(w, _IntSpin | _FloatSpin):
            w.setValue(w.minimum() if self.optional else default)

    def value(self) -> Any | None:
        """The chosen value, checked; None where it is still the default. A value that is
        not acceptable yet (typed halfway) raises InputError naming the knob."""
        w = self.widget
        if isinstance(w, QCheckBox):
            chosen: Any = w.isChecked()
        elif isinstance(w, QComboBox):
            chosen = w.currentData()
        elif isinstance(w, QLineEdit):
            text = w.text().strip()
            if not text:
                return None
            chosen = self.param.check(text)
        else:
            assert isinstance(w, _IntSpin | _FloatSpin)
            if self.optional and w.value() == w.minimum():
                return None
            chosen = self.param.check(w.value())
        if chosen is None or (not self.optional and chosen == self.default):
            return None
        return chosen

    def prefer(self, family: str) -> None:
        """A step away from "default" lands on ``family``'s own default (the one that will
        train), where the knob has one."""
        if isinstance(self.widget, _IntSpin | _FloatSpin) and family in self.defaults:
            self.widget._start = self.defaults[family]

    def set_value(self, value: Any) -> None:
        """Show ``value`` (checked against the knob's bounds), as if typed."""
        value = self.param.check(value)
        w = self.widget
        if isinstance(w, QCheckBox):
            w.setChecked(value)
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(w.findData(value))
        elif isinstance(w, QLineEdit):
            w.setText(text_of(value))
        else:
            w.setValue(value)


class _Sentinel:
    """A spin box whose minimum, one step below the knob's range, reads "default"; a step
    up from there lands on a family's default (see Knob.prefer), not on the range's edge."""

    def _setup(self, param: Param, optional: bool, start: Any, low: float, high: float,
               below: float) -> None:
        self._optional, self._start, self._low = optional, start, low
        self.setRange(below if optional else low, high)  # type: ignore[attr-defined]
        if optional:
            self.setSpecialValueText(DEFAULT)  # type: ignore[attr-defined]

    def _sentinel_step(self, steps: int) -> bool:
        """Handled a step into or out of "default"."""
        if not self._optional:
            return False
        value = self.value()  # type: ignore[attr-defined]
        if value == self.minimum() and steps > 0:  # type: ignore[attr-defined]
            self.setValue(self._start)  # type: ignore[attr-defined]
            return True
        if value != self.minimum() and steps < 0 and value <= self._low:  # type: ignore
            self.setValue(self.minimum())  # type: ignore[attr-defined]
            return True
        return False


class _IntSpin(QSpinBox, _Sentinel):
    def __init__(self, param: Param, optional: bool, start: Any) -> None:
        super().__init__()
        low = int(param.low) if param.low is not None else -INT_LIMIT + 1
        high = int(min(param.high, INT_LIMIT)) if param.high is not None else INT_LIMIT
        self._setup(param, optional, start, low, high, low - 1)

    def stepBy(self, steps: int) -> None:
        if not self._sentinel_step(steps):
            super().stepBy(steps)


class _FloatSpin(QDoubleSpinBox, _Sentinel):
    """Any float: shown as ``%g`` (3e-05, not 0.00003), typed in either form; a knob on a
    log scale (a learning rate) steps by halving and doubling."""

    def __init__(self, param: Param, optional: bool, start: Any) -> None:
        super().__init__()
        self._log = param.log
        self.setDecimals(12)  # what is kept; textFromValue decides what is shown
        low = param.low if param.low is not None else -1e12
        high = param.high if param.high is not None else 1e12
        span = high - low
        step = 10.0 ** math.floor(math.log10(abs(float(start)) or span / 10))
        while step > span / 5:
            step /= 10
        self.setSingleStep(step)
        self._setup(param, optional, start, low, high, low - self.singleStep())

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        if text == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        stripped = text.strip()
        if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", stripped):
            value = float(stripped)
            if self.minimum() <= value <= self.maximum():
                return QValidator.State.Acceptable, text, pos
            return QValidator.State.Intermediate, text, pos
        if re.fullmatch(r"[-+]?\d*\.?\d*([eE][-+]?\d*)?", stripped):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos

    def stepBy(self, steps: int) -> None:
        if self._sentinel_step(steps):
            return
        if self._log and self.value() > 0:
            value = self.value() * 2.0 ** steps
            self.setValue(min(max(value, self._low), self.maximum()))
            return
        super().stepBy(steps)


class _IntsValidator(QValidator):
    """Whole numbers separated by commas, each within the knob's bounds."""

    def __init__(self, param: Param, parent: QWidget) -> None:
        super().__init__(parent)
        self.param = param

    def validate(self, text: str, pos: int) -> object:
        if not re.fullmatch(r"[\d,\s]*", text):
            return QValidator.State.Invalid, text, pos
        try:
            if not self.param.check(text) and text.strip():
                raise InputError("empty")
        except InputError:
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos
