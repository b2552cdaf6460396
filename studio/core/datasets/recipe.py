"""The preprocessing recipe: fitted steps kept as JSON, one implementation everywhere.

Training, ``studio predict`` and the server's records endpoint all call :func:`transform`
with the same recipe, so a raw row becomes the same feature vector wherever it goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets.profile import column_kind
from studio.core.errors import InputError

RECIPE_FORMAT = 1
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
MAX_ONE_HOT = 100
FLOAT32_MAX = float(np.finfo(np.float32).max)


def fit_recipe(train: pd.DataFrame, target: str, task: str) -> dict[str, Any]:
    """Fit the steps on the training split only; unusable columns are listed as dropped."""
    features: list[dict[str, Any]] = []
    dropped: list[dict[str, str]] = []
    for name in train.columns:
        if name == target:
            continue
        series = train[name]
        kind = column_kind(series)
        if series.isna().all():
            dropped.append({"name": str(name), "reason": "all values missing"})
        elif kind == "numeric":
            values = pd.Series(_numeric(series, str(name)))  # ±inf counts as missing
            if values.isna().all():
                dropped.append({"name": str(name), "reason": "no finite values"})
                continue
            fill = float(values.median())
            std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 0.0
            features.append({
                "name": str(name), "kind": "numeric", "fill": fill,
                "mean": float(values.mean()), "scale": std if std > 1e-12 else 1.0,
            })
        elif kind in ("categorical", "boolean"):
            counts = pd.Series(_categories(series)).value_counts()
            cats = sorted(counts.index[:MAX_ONE_HOT])  # rarer values encode as unknown
            features.append({"name": str(name), "kind": "categorical", "categories": cats})
        else:
            dropped.append({"name": str(name), "reason": f"{kind} columns are not used yet"})
    if not features:
        raise InputError("no usable feature columns: every column besides the target was dropped")
    recipe: dict[str, Any] = {
        "format": RECIPE_FORMAT, "target": target, "task": task,
        "features": features, "dropped": dropped,
    }
    if task == "classification":
        recipe["labels"] = sorted({c for c in _categories(train[target]) if c is not None})
    return recipe


def n_features(recipe: Mapping[str, Any]) -> int:
    return sum(1 if f["kind"] == "numeric" else len(f["categories"]) for f in recipe["features"])


def feature_names(recipe: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for f in recipe["features"]:
        if f["kind"] == "numeric":
            names.append(f["name"])
        else:
            names.extend(f"{f['name']}={c}" for c in f["categories"])
    return names


def input_schema(recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The raw columns a caller sends, with the values a categorical column knows."""
    out = []
    for f in recipe["features"]:
        col: dict[str, Any] = {"name": f["name"], "kind": f["kind"]}
        if f["kind"] == "categorical":
            col["categories"] = f["categories"]
        out.append(col)
    return out


def transform(recipe: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Raw columns → float32 feature matrix. Missing columns and non-numbers are errors."""
    missing = [f["name"] for f in recipe["features"] if f["name"] not in frame.columns]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''}: "
                         + ", ".join(repr(m) for m in missing))
    n = len(frame)
    out = np.zeros((n, n_features(recipe)), dtype=np.float32)
    j = 0
    for f in recipe["features"]:
        col = frame[f["name"]]
        if f["kind"] == "numeric":
            values = _numeric(col, f["name"])
            values = (np.where(np.isnan(values), f["fill"], values) - f["mean"]) / f["scale"]
            big = np.nonzero(np.abs(values) > FLOAT32_MAX)[0]
            if len(big):
                raise InputError(f"column {f['name']!r}, row {big[0]}: "
                                 f"{col.iloc[big[0]]!r} is out of range")
            out[:, j] = values
            j += 1
        else:
            cats = f["categories"]
            codes = _codes(_categories(col), cats)
            rows = np.nonzero(codes >= 0)[0]
            out[rows, j + codes[rows]] = 1.0  # unknown or missing: all zeros
            j += len(cats)
    return out


def frame_from_records(
    recipe: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """The recipe's columns from JSON rows; other keys are ignored, never materialized."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise InputError("'instances' must be a list of objects")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise InputError(f"instance {i} is not an object of column: value pairs")
    names = [f["name"] for f in recipe["features"]]
    missing = [n for n in names if not any(n in r for r in records)]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''}: "
                         + ", ".join(repr(m) for m in missing))
    columns = {}
    for n in names:
        values = [r.get(n) for r in records]
        for i, v in enumerate(values):
            if isinstance(v, dict | list):
                raise InputError(f"instance {i}, column {n!r}: expected a single value")
        columns[n] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def encode_target(recipe: Mapping[str, Any], series: pd.Series) -> np.ndarray:
    if recipe["task"] == "classification":
        # -1 (missing) only for rows that prepare() drops before training
        return _codes(_categories(series), recipe["labels"])
    return _numeric(series, recipe["target"]).astype(np.float32)


def _codes(values: list[str | None], categories: list[str]) -> np.ndarray:
    """Index of each value in ``categories``; -1 for missing or unknown."""
    index = {c: i for i, c in enumerate(categories)}
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))


def as_category(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _categories(col: pd.Series) -> list[str | None]:
    return [None if is_missing(v) else as_category(v) for v in col.tolist()]


def is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float):
        return v != v
    return isinstance(v, str) and v.strip().lower() in NA_TOKENS


def _numeric(col: pd.Series, name: str) -> np.ndarray:
    """Floats with every missing or non-finite value as NaN; a non-number is an error."""
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(col):
        values = col.astype("float64").to_numpy(na_value=np.nan)
        return np.where(np.isfinite(values), values, np.nan)
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col.tolist()):
        if is_missing(v):
            out[i] = np.nan
        elif isinstance(v, bool):
            out[i] = float(v)
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError, OverflowError):
                raise InputError(f"column {name!r}, row {i}: {v!r} is not a number") from None
    return np.where(np.isfinite(out), out, np.nan)
