"""A knob: a model family's parameter or a compression method's setting, with its default,
bounds and a sentence of help. Light to import (no numpy or pandas): the GUI and the CLI's
parser read these before any data is loaded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studio.core.errors import InputError


@dataclass(frozen=True)
class Param:
    """One knob of a family. ``kind`` is int, float, bool, str or "ints" (a list of ints)."""

    name: str
    default: Any
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    log: bool = False  # searched on a log scale (learning rates, weight decay)

    def check(self, value: Any) -> Any:
        """``value`` (a JSON value or the text after ``key=``) as this knob's type, in range."""
        what = f"parameter {self.name}"
        try:
            if self.kind == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    value = value.lower() in ("true", "1", "yes")
                elif not isinstance(value, bool):
                    raise ValueError
                return value
            if self.kind == "ints":
                items = value.replace(" ", "").split(",") if isinstance(value, str) else value
                if isinstance(items, (int, float)) and not isinstance(items, bool):
                    items = [items]
                out = [int(v) for v in items if v != ""]
                if any(isinstance(v, bool) for v in items):
                    raise ValueError
                for v in out:
                    self._bounds(v, what)
                return out
            if self.kind == "str":
                text = str(value)
                if self.choices and text not in self.choices:
                    raise InputError(f"{what} must be one of {', '.join(self.choices)}, "
                                     f"got {text!r}")
                return text
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            if self.kind == "int":
                if number != int(number):
                    raise ValueError
                number = int(number)
            self._bounds(number, what)
            return number
        except (TypeError, ValueError):
            kinds = {"int": "a whole number", "float": "a number", "bool": "true or false",
                     "ints": "whole numbers separated by commas"}
            raise InputError(f"{what} must be {kinds.get(self.kind, self.kind)}, "
                             f"got {value!r}") from None

    def _bounds(self, v: float, what: str) -> None:
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise InputError(f"{what} must be from {self.low:g} to {self.high:g}, got {v:g}")
