"""A registered version judged on a stored labelled dataset (``studio evaluate``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets import catalog
from studio.core.datasets.prepare import image_frame, is_image_dataset, prepare
from studio.core.datasets.recipe import as_category, encode_target
from studio.core.datasets.split import present_mask
from studio.core.errors import InputError
from studio.core.events import Emit
from studio.core.registry import Version
from studio.core.training.evaluate import evaluate_model
from studio.core.workspace import Workspace


def _plural(items: list[str], one: str, many: str) -> str:
    return (one if len(items) == 1 else many) + " " + ", ".join(repr(i) for i in items)


SPLITS = ("test", "all")


def _test_rows(ws: Workspace, version: Version, info: catalog.DatasetInfo,
               stored: pd.DataFrame) -> np.ndarray:
    """The stored rows ``version`` was tested on: the split cut again exactly as training
    cut it (the same rows, fraction and seed give the same parts)."""
    manifest = version.manifest.raw
    training = manifest.get("training") or {}
    if "split" not in training or "seed" not in training:
        raise InputError(f"{version.ref}'s manifest does not say how its data was split; "
                         "use --split all")
    profile = catalog.cached_profile(ws, info)
    prepared = prepare(stored, info.name, str(manifest["target"]),
                       str(training.get("task") or version.task), training["split"],
                       int(training["seed"]), training.get("preprocessing"),
                       blob_path=ws.blobs.path,
                       kinds={c["name"]: c["kind"] for c in profile} if profile else None)
    assert prepared.rows is not None
    return np.sort(prepared.rows[prepared.parts[2]])


def evaluate_version(ws: Workspace, version: Version, dataset: str, emit: Emit | None = None,
                     importance: bool = True, threads: int = 0,
                     split: str | None = None) -> dict[str, Any]:
    """The evaluation document of ``version`` on ``dataset``, plus "model", "target",
    "rows_without_target", "training_data" (whether ``dataset`` is the very data the version
    was trained on) and, when some rows' class is one the model never saw, "unseen" (those
    rows score as wrong).

    ``split`` "all": every row with a value in the model's target. "test": the rows the
    version was tested on when it was trained, only for its own training data. None (the
    default): "test" on the training data (its other rows were learnt from, and would
    flatter the model), "all" on any other dataset."""
    from studio.core.predict import Predictor

    if split is not None and split not in SPLITS:
        raise InputError(f"unknown split {split!r}: test or all")
    if version.manifest.recipe is None or version.manifest.target is None:
        raise InputError(f"{version.ref} was made elsewhere: it has no recipe to read a "
                         "dataset's columns with, so it can only be scored on V2 tensors")
    manifest = version.manifest.raw
    recipe, target, task = manifest["recipe"], str(manifest["target"]), version.task
    info = catalog.get_dataset(ws, dataset)
    trained_on = (manifest.get("dataset") or {}).get("digest") == info.digest
    split = split or ("test" if trained_on else "all")
    if split == "test" and not trained_on:
        raise InputError(f"{version.ref} was not trained on {info.name!r}: it has no test "
                         "split there; use --split all")
    stored = catalog.load_frame(ws, info)
    reads_pictures = any(f["kind"] == "image" for f in recipe["features"])
    shown = None
    if is_image_dataset(stored.columns) and reads_pictures:
        # pictures are read by path below: hashed once first, as training does
        catalog.check_pictures(ws, info, stored, emit)
        frame = image_frame(stored, ws.blobs.path)
        shown = pd.DataFrame({"image": stored["path"]})  # the name a person knows it by
    elif reads_pictures:
        raise InputError(f"{version.ref} reads pictures: {info.name!r} is a table, not an "
                         "image dataset")
    else:
        frame = stored
    inputs = [f["name"] for f in recipe["features"]]
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise InputError(f"{info.name!r} lacks {version.ref}'s input "
                         + _plural(missing, "column", "columns"))
    if target not in frame.columns:
        raise InputError(f"{info.name!r} has no column {target!r}, the target "
                         f"{version.ref} predicts")
    keep = present_mask(frame[target])
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(frame[target]) or \
                pd.api.types.is_bool_dtype(frame[target]):
            raise InputError(f"{version.ref} predicts numbers, but {target!r} of "
                             f"{info.name!r} holds {frame[target].dtype} values, not numbers")
        values = frame[target].astype("float64").to_numpy(na_value=np.nan)
        keep &= np.isfinite(values)
    rows = np.flatnonzero(keep)
    if not len(rows):
        raise InputError(f"no row of {info.name!r} has a value in {target!r}")
    without_target = len(frame) - len(rows)
    if split == "test":
        rows = np.intersect1d(rows, _test_rows(ws, version, info, stored))
    labelled = frame.iloc[rows].reset_index(drop=True)
    if reads_pictures:
        missing_files = sum(not ws.blobs.exists(d) for d in stored["digest"].iloc[rows])
        if missing_files:
            raise InputError(f"{missing_files:,} pictures of {info.name!r} are missing from "
                             "the workspace; import the folder again")
    y = encode_target(recipe, labelled[target])
    actual = [as_category(v) for v in labelled[target]] if task == "classification" else None
    predictor = Predictor(ws, version, threads)
    doc = evaluate_model(
        predictor.infer, recipe, labelled[inputs], y, row_ids=rows, dataset=info.name,
        split=split, labels=manifest.get("labels"), task=task, allow_paths=reads_pictures,
        importance=importance, emit=emit, actual_text=actual,
        shown=None if shown is None else shown.iloc[rows].reset_index(drop=True))
    return {"model": version.ref, "target": target, **doc,
            "rows_without_target": int(without_target), "training_data": trained_on}
