"""What a training job is asked to do, as plain JSON-able data."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from studio.core.errors import InputError

TASKS = ("auto", "classification", "regression", "text-classification", "image-classification")


@dataclass
class TrainSpec:
    dataset: str
    target: str
    model: str | None = None
    task: str = "auto"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 3e-3
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    dropout: float = 0.1
    seed: int = 0
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    device: str = "auto"
    threads: int = 0  # 0: every core this process may use
    preprocessing: dict[str, Any] = field(default_factory=dict)  # see recipe.check_options

    def validate(self) -> TrainSpec:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not 1 <= self.epochs <= 10_000:
            raise InputError(f"epochs must be between 1 and 10000, got {self.epochs}")
        if not 1 <= self.batch_size <= 1_000_000:
            raise InputError(f"batch size must be positive, got {self.batch_size}")
        if not 0 < self.learning_rate < 10:
            raise InputError(f"learning rate must be in (0, 10), got {self.learning_rate}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, got {self.device!r}")
        return self

    def check_columns(self, columns: list[str]) -> TrainSpec:
        """Fail fast, before a process starts, on a target the dataset does not have."""
        from studio.core.datasets.prepare import training_columns

        columns = training_columns(columns)
        if self.target not in columns:
            raise InputError(f"no column {self.target!r} in dataset {self.dataset!r}; "
                             f"columns: {', '.join(columns)}")
        from studio.core.datasets.recipe import check_options

        check_options(self.preprocessing, columns)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown training options: {', '.join(sorted(unknown))}")
        return cls(**data).validate()


def default_threads(leave_one_free: bool) -> int:
    """Cores this process may use, less one when a GUI shares the machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores - 1) if leave_one_free else cores
