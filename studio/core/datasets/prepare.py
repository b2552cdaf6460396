"""From a dataset to fitted preprocessing: the rows that can be learned, the task, the split,
and the recipe fitted on the training rows. Training and the GUI's preview share it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets import pixels
from studio.core.datasets.profile import (
    column_kind,
    column_profile,
    nested_kind,
    suggest_task,
)
from studio.core.datasets.recipe import (
    feature_names,
    fit_recipe,
    id_words,
    transform_inputs,
)
from studio.core.datasets.split import present_mask, split_indices, strata
from studio.core.errors import InputError

# The tasks a person picks, and the head each one trains.
HEADS = {"text-classification": "classification", "image-classification": "classification"}


@dataclass
class Prepared:
    frame: pd.DataFrame  # rows with a usable target
    task: str
    recipe: dict[str, Any]
    parts: tuple[np.ndarray, np.ndarray, np.ndarray]  # train, validation, test row indices
    rows: np.ndarray | None = None  # each row's number in the stored frame


# The manifest table an image import writes (studio/core/datasets/images.py).
IMAGE_COLUMNS = {"path", "label", "digest", "width", "height"}


def is_image_dataset(columns: Sequence[str]) -> bool:
    return set(columns) >= IMAGE_COLUMNS


def training_columns(columns: Sequence[str]) -> list[str]:
    """The columns training sees: an image dataset's are its picture and its label."""
    return ["image", "label"] if is_image_dataset(columns) else list(columns)


def image_frame(frame: pd.DataFrame, blob_path: Callable[[str], Path]) -> pd.DataFrame:
    """An image dataset's manifest as training sees it: the picture's file, and the label."""
    return pd.DataFrame({"image": [str(blob_path(d)) for d in frame["digest"]],
                         "label": frame["label"]})


def prepare(
    frame: pd.DataFrame, dataset: str, target: str, task: str = "auto",
    split: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0,
    options: Mapping[str, Any] | None = None,
    blob_path: Callable[[str], Path] | None = None,
    kinds: Mapping[str, str] | None = None,
) -> Prepared:
    """Clear errors for a target that cannot be learned; otherwise the fitted preparation.

    ``kinds`` are the columns' kinds from the dataset's profile when it is at hand (else
    they are judged here, on every row).

    An image dataset needs ``blob_path`` (digest → file) to reach its pictures.
    """
    images = is_image_dataset(frame.columns)
    if images:
        if target != "label":
            raise InputError(f"{dataset!r} is an image dataset: its target is 'label'")
        if blob_path is None:
            raise InputError(f"{dataset!r} is an image dataset: its files are not at hand")
        frame = image_frame(frame, blob_path)
        missing = sum(not Path(f).is_file() for f in frame["image"])
        if missing:
            raise InputError(f"{missing:,} pictures of {dataset!r} are missing from the "
                             "workspace (was the dataset deleted?); import the folder again")
    if target not in frame.columns:
        cols = ", ".join(map(str, frame.columns))
        raise InputError(f"no column {target!r} in dataset {dataset!r}; columns: {cols}")
    nested = nested_kind(frame[target])
    if nested is not None:
        raise InputError(f"target {target!r} holds {nested} values, which cannot be "
                         "predicted: choose a column of classes or numbers")
    frame = frame.reset_index(drop=True)
    frame = frame[present_mask(frame[target])]
    asked = task
    if task == "auto":
        task = "image-classification" if images else suggest_task(column_profile(frame[target]))
    if task == "image-classification" and not images:
        raise InputError(f"{dataset!r} is a table: image classification needs an image "
                         "dataset (a folder with one sub-folder per class)")
    if images and task == "regression":
        raise InputError(f"{dataset!r} is an image dataset: its labels are classes")
    task = HEADS.get(task, task)
    if task not in ("classification", "regression"):
        raise InputError(f"target {target!r} suggests {task}, which is not supported yet")
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(frame[target]):
            raise InputError(f"target {target!r} is not numeric: use task classification")
        finite = np.isfinite(frame[target].astype("float64").to_numpy(na_value=np.nan))
        frame = frame[finite]
    if task == "classification":
        classes = frame[target].nunique()
        if classes < 2:
            raise InputError(f"target {target!r} has {classes} class: need at least 2")
        if len(frame) < 2 * classes:
            raise InputError(f"only {len(frame)} rows for {classes} classes of {target!r}: "
                             f"need at least {2 * classes} (two per class) to train and test; "
                             "is it an identifier rather than a class?")
        if classes > 1000:
            raise InputError(f"target {target!r} has {classes} distinct values: "
                             "too many classes; did you mean regression?")
    rows = frame.index.to_numpy()
    frame = frame.reset_index(drop=True)
    if len(frame) < 10:
        raise InputError(f"only {len(frame)} rows have a value in {target!r}: need 10 or more")
    codes = strata(frame[target]) if task == "classification" else None
    parts = split_indices(codes, len(frame), tuple(split), seed)  # type: ignore[arg-type]
    if kinds is None:
        kinds = {str(c): column_kind(frame[c]) for c in frame.columns
                 if c != target and not images}
    recipe = fit_recipe(frame.iloc[parts[0]], target, task, options,
                        image_columns=("image",) if images else (), kinds=kinds)
    if asked == "text-classification" and recipe["modality"] != "text":
        raise InputError(f"text classification needs a column of text in {dataset!r}; "
                         "none was found")
    return Prepared(frame, task, recipe, parts, rows)


def preview(prepared: Prepared, rows: int = 100) -> pd.DataFrame:
    """The first training rows as the model will see them: one column per table feature,
    token ids as text, a picture as its tensor's shape and range."""
    sample = prepared.frame.iloc[prepared.parts[0][:rows]]
    inputs = transform_inputs(prepared.recipe, sample, allow_paths=True)
    out = pd.DataFrame(inputs.get("input", np.zeros((len(sample), 0), np.float32)),
                       columns=feature_names(prepared.recipe))
    if "tokens" in inputs:
        words = id_words(prepared.recipe)
        out["tokens"] = [" ".join(map(str, row[row > 0])) or "(none)"
                         for row in inputs["tokens"]]
        out["known words"] = [" ".join(words[i] for i in row[row > 0]) or "(none)"
                              for row in inputs["tokens"]]
    if "image" in inputs:
        out["image"] = [f"{'×'.join(map(str, x.shape))}, {x.min():.2f} … {x.max():.2f}"
                        for x in inputs["image"]]
    return out


def preview_pictures(prepared: Prepared, count: int = 12) -> list[tuple[np.ndarray, str]]:
    """A few training pictures as the model gets them before normalizing (uint8
    [size, size, 3] at the recipe's size), with their labels; classes take turns, so each
    shows. Empty for a dataset without pictures."""
    feature = next((f for f in prepared.recipe["features"] if f["kind"] == "image"), None)
    if feature is None or count < 1:
        return []
    target = prepared.recipe["target"]
    train = prepared.frame.iloc[prepared.parts[0]]
    turn = train.groupby(target, sort=False).cumcount()  # 0 for each class's first row, …
    picked = train.iloc[np.argsort(turn.to_numpy(), kind="stable")[:count]]
    images = pixels.decode_many(feature, picked[feature["name"]].tolist(), allow_paths=True)
    return list(zip(images, picked[target].astype(str), strict=True))
