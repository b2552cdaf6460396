"""The version a compression starts from: its graph, and its training data cut again.

A method that learns or calibrates needs the rows the source was trained on, split exactly as
training split them (the same rows, fractions and seed give the same parts), transformed by
the source's own stored recipe. Results are judged on that split's test rows, so a result and
its source are scored on the same held-out data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core import registry
from studio.core.compress.availability import missing_data_reason
from studio.core.errors import InputError
from studio.core.events import Emit
from studio.core.training.families.base import TrainData
from studio.core.workspace import Workspace


@dataclass
class Source:
    version: registry.Version
    onnx: bytes
    data: TrainData | None  # None: the version has no recipe, or its data was not asked for
    dataset: dict[str, Any] | None  # name, digest, rows of the data ``data`` came from

    @property
    def ref(self) -> str:
        return self.version.ref


def load_source(ws: Workspace, version: registry.Version, need_data: bool,
                dataset: str | None = None, emit: Emit | None = None,
                should_stop: Callable[[], bool] | None = None) -> Source:
    """The source's graph and (``need_data``) its training data, re-split. ``dataset``
    names another stored dataset with the source's columns and target, for a version whose
    own data is gone (it is split with the source's fractions and seed)."""
    onnx = registry.read_file(ws, version, "model.onnx")
    if not need_data or version.manifest.recipe is None:
        return Source(version, onnx, None, None)
    return Source(version, onnx, *_data(ws, version, dataset, emit, should_stop))


def _data(ws: Workspace, version: registry.Version, dataset: str | None, emit: Emit | None,
          should_stop: Callable[[], bool] | None) -> tuple[TrainData, dict[str, Any]]:
    from studio.core.datasets import catalog
    from studio.core.datasets.prepare import prepare
    from studio.core.datasets.recipe import encode_target

    manifest = version.manifest
    raw = manifest.raw
    if dataset:
        info = catalog.get_dataset(ws, dataset)
    else:
        reason = missing_data_reason(ws, version)
        if reason:
            raise InputError(reason)
        info = catalog.dataset_by_digest(ws, str(raw["dataset"]["digest"]))
    training = raw.get("training") or {}
    recipe, target = raw["recipe"], str(manifest.target)
    stored = catalog.load_frame(ws, info)
    if any(f["kind"] == "image" for f in recipe["features"]):
        catalog.check_pictures(ws, info, stored, emit or (lambda e: None),
                               should_stop or (lambda: False))
    profile = catalog.cached_profile(ws, info)
    prepared = prepare(stored, info.name, target, str(training.get("task") or manifest.task),
                       training.get("split") or (0.7, 0.15, 0.15),
                       int(training.get("seed", 0)), training.get("preprocessing"),
                       blob_path=ws.blobs.path,
                       kinds={c["name"]: c["kind"] for c in profile} if profile else None)
    # the source's own fitted recipe reads the rows, not the one prepare fitted again
    missing = [f["name"] for f in recipe["features"] if f["name"] not in prepared.frame]
    if missing:
        raise InputError(f"{info.name!r} lacks {version.ref}'s input column(s) "
                         + ", ".join(repr(m) for m in missing))
    y = encode_target(recipe, prepared.frame[target])
    parts = prepared.parts
    if manifest.task == "classification":
        # rows of a class the source never saw cannot be learnt from or scored
        parts = tuple(p[y[p] >= 0] for p in parts)  # type: ignore[assignment]
        if not all(len(p) for p in parts):
            raise InputError(f"{info.name!r} has no rows of {version.ref}'s classes in one "
                             "of its splits")
    data = TrainData(recipe, str(manifest.task), prepared.frame, y, parts,
                     scratch=ws.blobs.tmp, rows=prepared.rows)
    return data, {"name": info.name, "digest": info.digest, "rows": len(prepared.frame)}


def sample(data: TrainData, rows: np.ndarray, limit: int, seed: int = 0) -> dict[str, Any]:
    """Up to ``limit`` of ``rows`` (a seeded shuffle), as the model's named input tensors."""
    from studio.core.training.data import ModelData

    pick = np.random.default_rng(seed).permutation(rows)[:limit]
    model_data = ModelData(data.recipe, data.frame.iloc[pick].reset_index(drop=True), "cpu",
                           lambda e: None)
    tensors = model_data.batch(np.arange(len(pick)))
    # the graph takes token ids as int64 (ModelData keeps them int32 for training's memory)
    return {name: t.numpy().astype(np.int64) if name == "tokens" else t.numpy()
            for name, t in zip(model_data.names, tensors, strict=True)}
