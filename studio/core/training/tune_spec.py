"""What a tuning job is asked to do, as plain JSON-able data (light: the GUI checks it
before a job starts)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from studio.core.errors import InputError
from studio.core.training import families
from studio.core.training.spec import TrainSpec

DEFAULT_TRIALS = 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def check_study_name(name: str) -> str:
    """A study's name is a file's name in the workspace: plain characters only."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"study name {name!r}: up to 80 letters, digits, '-', '_' and '.', "
                         "beginning with a letter or digit")
    return name


@dataclass
class TuneSpec:
    dataset: str
    target: str
    task: str = "auto"
    family: str = "auto"  # "auto": the family is searched too, among those that fit
    trials: int = 0  # 0 with no time budget: DEFAULT_TRIALS
    time_budget_s: float = 0.0  # the whole search; 0: no limit but the trials
    trial_budget_s: float = 0.0  # each trial's; 0: from the data's size, as a run's
    epochs: int | None = None  # the neural families' most (None: each family's own)
    study: str | None = None  # continue this study; None: a new one
    seed: int = 0
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    device: str = "auto"
    threads: int = 0
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TuneSpec:
        if self.trials < 0 or self.trials > 10_000:
            raise InputError(f"trials must be from 1 to 10000 (0: {DEFAULT_TRIALS}, or as many "
                             f"as the time budget allows), got {self.trials}")
        if not 0 <= self.time_budget_s <= 30 * 86_400:
            raise InputError("the time budget must be from 0 to 30 days in seconds")
        if self.study is not None:
            check_study_name(self.study)
        if self.family != "auto":
            families.get(self.family)
        self.trial_spec({}, self.family if self.family != "auto" else "mlp").validate()
        return self

    def trial_spec(self, params: Mapping[str, Any], family: str) -> TrainSpec:
        return TrainSpec(dataset=self.dataset, target=self.target, task=self.task,
                         family=family, params={f"{family}.{k}": v for k, v in params.items()},
                         time_budget_s=self.trial_budget_s, epochs=self.epochs, seed=self.seed,
                         split=list(self.split), device=self.device, threads=self.threads,
                         preprocessing=dict(self.preprocessing))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneSpec:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(f"unknown tuning options: {', '.join(sorted(unknown))}")
        return cls(**data).validate()
