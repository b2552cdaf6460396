"""From a dataset to fitted preprocessing: the rows that can be learned, the task, the split,
and the recipe fitted on the training rows. Training and the GUI's preview share it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets.profile import column_profile, suggest_task
from studio.core.datasets.recipe import feature_names, fit_recipe, transform
from studio.core.datasets.split import present_mask, split_indices, strata
from studio.core.errors import InputError


@dataclass
class Prepared:
    frame: pd.DataFrame  # rows with a usable target
    task: str
    recipe: dict[str, Any]
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # train, validation, test row indices


def prepare(
    frame: pd.DataFrame, dataset: str, target: str, task: str = "auto",
    split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Prepared:
    """Clear errors for a target that cannot be learned; otherwise the fitted preparation."""
    if target not in frame.columns:
        cols = ", ".join(map(str, frame.columns))
        raise InputError(f"no column {target!r} in dataset {dataset!r}; columns: {cols}")
    if {"path", "label", "digest"} <= set(frame.columns):
        raise InputError(f"{dataset!r} is an image dataset: training on images is not "
                         "supported yet, only tables")
    frame = frame[present_mask(frame[target])].reset_index(drop=True)
    task = task if task != "auto" else suggest_task(column_profile(frame[target]))
    if task not in ("classification", "regression"):
        raise InputError(f"target {target!r} suggests {task}, which is not supported yet")
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(frame[target]):
            raise InputError(f"target {target!r} is not numeric: use task classification")
        finite = np.isfinite(frame[target].astype("float64").to_numpy(na_value=np.nan))
        frame = frame[finite].reset_index(drop=True)
    if task == "classification":
        classes = frame[target].nunique()
        if classes < 2:
            raise InputError(f"target {target!r} has {classes} class: need at least 2")
        if classes > 1000:
            raise InputError(f"target {target!r} has {classes} distinct values: "
                             "too many classes; did you mean regression?")
    if len(frame) < 10:
        raise InputError(f"only {len(frame)} rows have a value in {target!r}: need 10 or more")
    codes = strata(frame[target]) if task == "classification" else None
    parts = split_indices(codes, len(frame), tuple(split), seed)  # type: ignore[arg-type]
    recipe = fit_recipe(frame.iloc[parts[0]], target, task, options)
    return Prepared(frame, task, recipe, parts)


def preview(prepared: Prepared, rows: int = 100) -> pd.DataFrame:
    """The first training rows as the model will see them."""
    sample = prepared.frame.iloc[prepared.parts[0][:rows]]
    return pd.DataFrame(transform(prepared.recipe, sample),
                        columns=feature_names(prepared.recipe))
