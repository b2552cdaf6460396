"""What a training job is asked to do, as plain JSON-able data."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from studio.core.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "mps")
DISTRIBUTED_FAMILIES = ("mlp", "embedding", "cnn")  # trained by the torch loop
TASKS = ("auto", "classification", "regression", "text-classification", "image-classification")


@dataclass
class TrainSpec:
    dataset: str
    target: str
    model: str | None = None
    task: str = "auto"
    # "auto": every family that fits, within the time budget, the best on validation wins
    family: str = "auto"
    # Family parameters: "key" goes to every family that has that knob, "family.key" to one.
    params: dict[str, Any] = field(default_factory=dict)
    time_budget_s: float = 0.0  # 0: chosen from the data's size (see pipeline.default_budget)
    # The common knobs, None for each family's own default (they fold into params).
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    hidden: list[int] | None = None
    dropout: float | None = None
    seed: int = 0
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    device: str = "auto"
    threads: int = 0  # 0: every core this process may use
    preprocessing: dict[str, Any] = field(default_factory=dict)  # see recipe.check_options
    # the run this one resumes: each family goes on from that run's last checkpoint of it
    resume: str | None = None
    # several processes under torchrun: {"nproc_per_node": N, "nnodes": M,
    # "rdzv_endpoint": "HOST:PORT", "rdzv_id": "..."} (None: this process alone)
    distributed: dict[str, Any] | None = None

    def validate(self) -> TrainSpec:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.epochs is not None and not 1 <= self.epochs <= 10_000:
            raise InputError(f"epochs must be between 1 and 10000, got {self.epochs}")
        if self.batch_size is not None and not 1 <= self.batch_size <= 1_000_000:
            raise InputError(f"batch size must be positive, got {self.batch_size}")
        if self.learning_rate is not None and not 0 < self.learning_rate < 10:
            raise InputError(f"learning rate must be in (0, 10), got {self.learning_rate}")
        if not (0 <= self.time_budget_s <= 7 * 86_400):
            raise InputError("time budget must be from 0 (automatic) to a week in seconds, "
                             f"got {self.time_budget_s}")
        if not isinstance(self.params, dict):
            raise InputError("params must be an object of key: value")
        if self.distributed is not None:
            self._check_distributed()
        if self.resume is not None and (not isinstance(self.resume, str) or not self.resume):
            raise InputError("resume must be a run id")
        if not (self.device in DEVICES or re.fullmatch(r"cuda:\d{1,2}", str(self.device))):
            raise InputError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got "
                             f"{self.device!r} (studio devices lists them)")
        from studio.core.training import families

        # every knob of the families that may train is checked now, not after a long run
        chosen = (families.all_families() if self.family == "auto"
                  else [families.get(self.family)])
        for family in chosen:
            self.params_for(family)
        return self

    def _check_distributed(self) -> None:
        d = self.distributed
        if not isinstance(d, dict):
            raise InputError("distributed must be an object")
        unknown = set(d) - {"nproc_per_node", "nnodes", "rdzv_endpoint", "rdzv_id"}
        if unknown:
            raise InputError(f"unknown distributed options: {', '.join(sorted(unknown))}")
        for key, most in (("nproc_per_node", 1024), ("nnodes", 4096)):
            value = d.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise InputError(f"{key.replace('_', '-')} must be from 1 to {most}, got "
                                 f"{value!r}")
        endpoint = d.get("rdzv_endpoint")
        if d.get("nnodes", 1) > 1 and not endpoint:
            raise InputError("training on several machines needs --rdzv-endpoint HOST:PORT "
                             "(the same on every machine)")
        if endpoint is not None and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}",
                                                     str(endpoint)):
            raise InputError(f"rdzv-endpoint must be HOST:PORT, got {endpoint!r}")
        if self.family not in DISTRIBUTED_FAMILIES:
            raise InputError("distributed training runs one neural family: choose --family "
                             + " or ".join(DISTRIBUTED_FAMILIES))

    def common(self) -> dict[str, Any]:
        """The common knobs that were set, by their parameter names."""
        given = {"epochs": self.epochs, "batch_size": self.batch_size,
                 "learning_rate": self.learning_rate, "hidden": self.hidden,
                 "dropout": self.dropout}
        return {k: v for k, v in given.items() if v is not None}

    def params_for(self, family: Any) -> dict[str, Any]:
        """``family``'s parameters: its defaults, then the common knobs and bare keys it has,
        then keys qualified with its name. A key no family has is an error."""
        from studio.core.training import families
        from studio.core.training.families.base import resolve_params

        known = {p.name for p in family.params}
        everyone = {p.name for f in families.all_families() for p in f.params}
        names = {f.name for f in families.all_families()}
        # The common knobs (--epochs, --lr, ...) speak of epochs: they go to the families
        # trained by epochs, not to boosted trees, whose learning rate means another thing.
        given: dict[str, Any] = ({k: v for k, v in self.common().items() if k in known}
                                 if "epochs" in known else {})
        for key, value in self.params.items():
            owner, _, bare = str(key).rpartition(".")
            if owner:
                if owner not in names:
                    raise InputError(f"parameter {key!r}: no model family {owner!r}; "
                                     f"families: {', '.join(sorted(names))}")
                if owner == family.name:
                    given[bare] = value
            elif bare not in everyone:
                raise InputError(f"no family has a parameter {bare!r}; parameters: "
                                 + ", ".join(sorted(everyone)))
            elif bare in known:
                given[bare] = value
        return resolve_params(family, given)

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
