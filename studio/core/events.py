"""The typed events a job emits. One vocabulary for every consumer.

A job writes them as JSON lines on stdout; the CLI renders them as a progress bar, the GUI as
progress bars and live curves, the store keeps metric rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Started(Event):
    kind: ClassVar[str] = "started"
    job_id: str
    job_kind: str
    device: str = "cpu"


@dataclass(frozen=True)
class Progress(Event):
    """``current`` of ``total`` units of ``stage`` are done (total 0: unknown)."""

    kind: ClassVar[str] = "progress"
    stage: str
    current: float
    total: float
    message: str = ""


@dataclass(frozen=True)
class Metric(Event):
    """A named scalar at a point of training; ``step`` counts optimizer steps."""

    kind: ClassVar[str] = "metric"
    name: str
    value: float
    epoch: int
    step: int
    series: str = ""  # the model family, in a run that trains several


@dataclass(frozen=True)
class Candidate(Event):
    """A row of the leaderboard: one model family's state in a run that tries several.

    ``status`` is "training", "done", "failed" or "skipped"; ``metric`` names the scores
    ("accuracy" or "r2", higher is better); ``chosen`` marks the winner on validation."""

    kind: ClassVar[str] = "candidate"
    family: str
    title: str
    status: str
    metric: str = ""
    validation: float | None = None
    test: float | None = None
    fit_s: float = 0.0
    size_bytes: int = 0
    message: str = ""
    chosen: bool = False


@dataclass(frozen=True)
class Compressed(Event):
    """One result of the compression lab, as a row of its table (see
    ``studio.core.compress.lab``): written as soon as the result is registered or failed."""

    kind: ClassVar[str] = "compressed"
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Trial(Event):
    """A tuning trial (itself a run, ``run_id``): ``state`` is "running", "complete",
    "pruned" or "failed"; ``value`` its validation score; the study's best so far beside."""

    kind: ClassVar[str] = "trial"
    number: int
    state: str
    run_id: str = ""
    family: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    value: float | None = None
    metric: str = ""
    best_number: int | None = None
    best_value: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Done(Event):
    kind: ClassVar[str] = "done"
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed(Event):
    """``user_error`` tells a bad input (exit code 2) from a fault of the program."""

    kind: ClassVar[str] = "failed"
    error: str
    user_error: bool = False
    cancelled: bool = False


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Started, Progress, Metric, Candidate, Compressed, Trial, Log,
                              Done, Failed)
}

Emit = Callable[[Event], None]


def parse_event(line: str) -> Event | None:
    """Parse one JSON line into an event; ``None`` for a line that is not one of ours."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    kind = data.pop("event", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    try:
        return cls(**data)
    except TypeError:
        return None


def is_terminal(event: Event) -> bool:
    return isinstance(event, Done | Failed)
