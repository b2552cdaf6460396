"""The preprocessing recipe: fitted steps kept as JSON, one implementation everywhere.

Training, ``studio predict`` and the server's records endpoint all call :func:`transform`
with the same recipe, so a raw row becomes the same feature vector wherever it goes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets import pixels, text
from studio.core.datasets.profile import column_kind
from studio.core.errors import InputError

RECIPE_FORMAT = 1
# One missing-value vocabulary for import, training, `studio predict` and the server.
NA_TOKENS = frozenset({"", "na", "n/a", "nan", "-nan", "null", "none", "?", "#n/a"})
MAX_ONE_HOT = 100
FLOAT32_MAX = float(np.finfo(np.float32).max)


FILLS = ("median", "mean", "most_frequent", "constant")
SCALES = ("standard", "minmax", "none")
ENCODINGS = ("onehot", "ordinal")
CLIP_QUANTILES = (0.01, 0.99)


def check_options(options: Mapping[str, Any] | None, columns: Sequence[str]) -> dict[str, Any]:
    """The user's preprocessing choices, checked: {"columns": {name: {step: choice}}}."""
    if not options:
        return {"columns": {}}
    cols = options.get("columns", {}) if isinstance(options, Mapping) else None
    if not isinstance(cols, Mapping):
        raise InputError('preprocessing must look like {"columns": {"name": {...}}}')
    allowed = {"drop": (True, False), "fill": FILLS, "scale": SCALES, "encode": ENCODINGS,
               "clip": (True, False), "size": pixels.SIZES}
    ranges = {"max_tokens": (text.MIN_TOKENS, text.MAX_TOKENS),
              "vocabulary": (100, text.MAX_VOCAB), "bigrams": (0, text.MAX_BIGRAMS)}
    for name, choice in cols.items():
        if name not in columns:
            raise InputError(f"preprocessing names an unknown column {name!r}")
        if not isinstance(choice, Mapping):
            raise InputError(f"preprocessing for {name!r} must be an object")
        for step, value in choice.items():
            if step == "fill_value":
                _check_fill_value(name, value)
                continue
            if step in ranges:
                lo, hi = ranges[step]
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise InputError(f"preprocessing {name!r}: {step} must be a whole number "
                                     f"from {lo} to {hi}, got {value!r}")
                continue
            if step not in allowed or value not in allowed[step]:
                raise InputError(f"preprocessing {name!r}: {step}={value!r} is not one of "
                                 f"{', '.join(map(str, allowed.get(step, allowed)))}")
    return {"columns": dict(cols)}


def _check_fill_value(name: str, value: Any) -> None:
    """A number, and a finite one: "nan" or 1e999 would reach training as a NaN and end as a
    misleading "training diverged"."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"preprocessing {name!r}: fill_value must be a number, "
                         f"got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"preprocessing {name!r}: fill_value must be a finite number, "
                         f"got {value!r}")


def fit_recipe(train: pd.DataFrame, target: str, task: str,
               options: Mapping[str, Any] | None = None,
               image_columns: Sequence[str] = (),
               kinds: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Fit the steps on the training split only; unusable columns are listed as dropped.

    ``options`` holds the person's choices per column (see :func:`check_options`); a column
    without choices gets: numbers filled with the median and standardized, categories one-hot,
    long text turned into token ids. ``image_columns`` hold pictures (an image dataset's
    files), resized and normalized. ``kinds`` are the columns' kinds judged on the whole
    dataset (a small training split can make long text look like categories).
    """
    chosen = check_options(options, [str(c) for c in train.columns])["columns"]
    features: list[dict[str, Any]] = []
    dropped: list[dict[str, str]] = []
    for name in train.columns:
        if name == target:
            continue
        series = train[name]
        choice = chosen.get(str(name), {})
        kind = (kinds or {}).get(str(name)) or column_kind(series)
        if choice.get("drop"):
            dropped.append({"name": str(name), "reason": "dropped by choice"})
        elif series.isna().all():
            dropped.append({"name": str(name), "reason": "all values missing"})
        elif name in image_columns:
            features.append(pixels.fit_image(str(name), series.tolist(), choice))
        elif kind == "text":
            features.append(text.fit_text(str(name), _texts(series), choice))
        elif kind == "image path":
            dropped.append({"name": str(name), "reason": "image paths in a table are not "
                            "read: import the image folder itself"})
        elif kind == "numeric":
            values = pd.Series(_numeric(series, str(name)))  # ±inf counts as missing
            if values.isna().all():
                dropped.append({"name": str(name), "reason": "no finite values"})
                continue
            features.append(_fit_numeric(str(name), values, choice))
        elif kind in ("categorical", "boolean"):
            cats_all = pd.Series(_categories(series))
            counts = cats_all.value_counts()
            cats = sorted(counts.index[:MAX_ONE_HOT])  # rarer values encode as unknown
            feature: dict[str, Any] = {
                "name": str(name),
                "kind": "ordinal" if choice.get("encode") == "ordinal" else "categorical",
                "categories": cats,
            }
            if choice.get("fill") == "most_frequent" and len(counts):
                feature["fill"] = str(counts.index[0])
            features.append(feature)
        else:
            dropped.append({"name": str(name), "reason": f"{kind} columns are not used yet"})
    if not features:
        raise InputError("no usable feature columns: every column besides the target was "
                         "dropped")
    kinds = {f["kind"] for f in features}
    recipe: dict[str, Any] = {
        "format": RECIPE_FORMAT, "target": target, "task": task,
        "modality": "image" if "image" in kinds else "text" if "text" in kinds else "tabular",
        "features": features, "dropped": dropped,
    }
    if task == "classification":
        recipe["labels"] = sorted({c for c in _categories(train[target]) if c is not None})
    return recipe


def _fit_numeric(name: str, values: pd.Series, choice: Mapping[str, Any]) -> dict[str, Any]:
    feature: dict[str, Any] = {"name": name, "kind": "numeric"}
    if choice.get("clip"):
        lo, hi = (float(values.quantile(q)) for q in CLIP_QUANTILES)
        feature["clip"] = [lo, hi]
        values = values.clip(lo, hi)
    fill = choice.get("fill", "median")
    if fill == "constant":
        try:
            feature["fill"] = float(choice.get("fill_value", 0.0))
        except (TypeError, ValueError):
            raise InputError(f"preprocessing {name!r}: fill_value must be a number") from None
    elif fill == "mean":
        feature["fill"] = float(values.mean())
    elif fill == "most_frequent":
        feature["fill"] = float(values.mode().iloc[0])
    else:
        feature["fill"] = float(values.median())
    scale = choice.get("scale", "standard")
    if scale == "minmax":
        low, span = float(values.min()), float(values.max() - values.min())
        feature.update(mean=low, scale=span if span > 1e-12 else 1.0, scaling="minmax")
    elif scale == "none":
        feature.update(mean=0.0, scale=1.0, scaling="none")
    else:
        std = float(values.std(ddof=0)) if values.notna().sum() > 1 else 0.0
        feature.update(mean=float(values.mean()), scale=std if std > 1e-12 else 1.0,
                       scaling="standard")
    return feature


TABULAR = ("numeric", "categorical", "ordinal")


def _width(feature: Mapping[str, Any]) -> int:
    return len(feature["categories"]) if feature["kind"] == "categorical" else 1


def _tabular(recipe: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [f for f in recipe["features"] if f["kind"] in TABULAR]


def _of_kind(recipe: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    return [f for f in recipe["features"] if f["kind"] == kind]


def n_features(recipe: Mapping[str, Any]) -> int:
    """Width of the float ``input`` tensor (the table columns)."""
    return sum(_width(f) for f in _tabular(recipe))


def vocabulary_size(recipe: Mapping[str, Any]) -> int:
    """Ids the ``tokens`` tensor may hold: padding, then each text column's unknown + words."""
    return 1 + sum(text.width(f) - 1 for f in _of_kind(recipe, "text"))


def model_inputs(recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The model's tensors, in the order the graph takes them: name, datatype and shape."""
    out = []
    if _tabular(recipe):
        out.append({"name": "input", "datatype": "FP32", "shape": [-1, n_features(recipe)]})
    texts = _of_kind(recipe, "text")
    if texts:
        out.append({"name": "tokens", "datatype": "INT64",
                    "shape": [-1, sum(text.length(f) for f in texts)],
                    "vocabulary_size": vocabulary_size(recipe),
                    "segments": [text.length(f) for f in texts]})
    for f in _of_kind(recipe, "image")[:1]:
        out.append({"name": "image", "datatype": "FP32",
                    "shape": [-1, 3, int(f["size"]), int(f["size"])]})
    return out


def column_slices(recipe: Mapping[str, Any]) -> dict[str, tuple[str, int, int | None]]:
    """Raw column → (tensor, start, stop): the part of the model's tensors it fills. Every
    step of the recipe is row-wise, so shuffling a column's rows equals shuffling the rows
    of its slice (permutation importance needs no preprocessing again)."""
    out: dict[str, tuple[str, int, int | None]] = {}
    j = 0
    for f in _tabular(recipe):
        out[f["name"]] = ("input", j, j + _width(f))
        j += _width(f)
    j = 0
    for f in _of_kind(recipe, "text"):
        out[f["name"]] = ("tokens", j, j + text.length(f))
        j += text.length(f)
    for f in _of_kind(recipe, "image")[:1]:
        out[f["name"]] = ("image", 0, None)
    return out


def feature_names(recipe: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for f in _tabular(recipe):
        if f["kind"] == "categorical":
            names.extend(f"{f['name']}={c}" for c in f["categories"])
        else:
            names.append(f["name"])
    return names


def input_schema(recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The raw columns a caller sends, with the values a categorical column knows."""
    out = []
    for f in recipe["features"]:
        kind = f["kind"] if f["kind"] in ("numeric", "text", "image") else "categorical"
        col: dict[str, Any] = {"name": f["name"], "kind": kind}
        if kind == "categorical":
            col["categories"] = f["categories"]
        if kind == "image":
            col["encoding"] = "base64"
        out.append(col)
    return out


def _check_columns(recipe: Mapping[str, Any], frame: pd.DataFrame) -> None:
    missing = [f["name"] for f in recipe["features"] if f["name"] not in frame.columns]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''}: "
                         + ", ".join(repr(m) for m in missing))


def transform_inputs(recipe: Mapping[str, Any], frame: pd.DataFrame,
                     allow_paths: bool = False,
                     budget: pixels.PixelBudget | None = None) -> dict[str, np.ndarray]:
    """Raw rows → the model's tensors by name (see :func:`model_inputs`).

    The one implementation of preprocessing: training, ``studio predict`` and the server
    all come through here. ``allow_paths`` lets image values be local files (never in the
    server, where a path would read the server's own disk); ``budget`` caps the pixels its
    pictures may decode to.
    """
    _check_columns(recipe, frame)
    out: dict[str, np.ndarray] = {}
    if _tabular(recipe):
        out["input"] = transform(recipe, frame)
    texts = _of_kind(recipe, "text")
    if texts:
        out["tokens"] = text_tokens(recipe, frame)
    for f in _of_kind(recipe, "image")[:1]:
        out["image"] = pixels.normalize(
            f, pixels.decode_many(f, frame[f["name"]].tolist(), allow_paths, budget=budget))
    return out


def id_words(recipe: Mapping[str, Any]) -> dict[int, str]:
    """token id → the word (or bigram) it stands for, across the text columns (for showing
    ids)."""
    out, offset = {}, 0
    for f in _of_kind(recipe, "text"):
        for i, word in enumerate(text.id_words(f)):
            out[offset + text.FIRST_WORD + i] = word
        offset += text.width(f) - 1
    return out


def text_tokens(recipe: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    parts, offset = [], 0
    for f in _of_kind(recipe, "text"):
        parts.append(text.encode(f, _texts(frame[f["name"]]), offset))
        offset += text.width(f) - 1
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def transform(recipe: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Raw table columns → the float32 ``input`` matrix. Non-numbers are errors."""
    _check_columns(recipe, frame)
    n = len(frame)
    out = np.zeros((n, n_features(recipe)), dtype=np.float32)
    j = 0
    for f in _tabular(recipe):
        col = frame[f["name"]]
        if f["kind"] == "numeric":
            values = _numeric(col, f["name"])
            if "clip" in f:
                values = np.clip(values, *f["clip"])  # NaN stays NaN, then is filled
            values = (np.where(np.isnan(values), f["fill"], values) - f["mean"]) / f["scale"]
            big = np.nonzero(np.abs(values) > FLOAT32_MAX)[0]
            if len(big):
                raise InputError(f"column {f['name']!r}, row {big[0]}: "
                                 f"{col.iloc[big[0]]!r} is out of range")
            out[:, j] = values
            j += 1
        else:
            cats = f["categories"]
            values = _categories(col)
            if "fill" in f:
                values = [f["fill"] if v is None else v for v in values]
            codes = _codes(values, cats)
            if f["kind"] == "ordinal":
                out[:, j] = codes  # unknown or missing: -1
                j += 1
                continue
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
    for f in recipe["features"]:
        n, kind = f["name"], f["kind"]
        values = [r.get(n) for r in records]
        for i, v in enumerate(values):
            if v is None or type(v) is int or (type(v) is float and -math.inf < v < math.inf):
                continue  # most values: nothing more to look at
            if isinstance(v, dict | list) and not (kind == "image" and pixels.is_b64(v)):
                hint = ' (or {"b64": "..."})' if kind == "image" else ""
                raise InputError(f"instance {i}, column {n!r}: expected a single value{hint}")
            if kind == "numeric" and not _finite_or_missing(v):
                raise InputError(f"instance {i}, column {n!r}: {str(v)[:40]!r} is not a finite "
                                 "number (send null for a missing value)")
        columns[n] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def _finite_or_missing(v: Any) -> bool:
    """False for a number a request spells as infinite or NaN ("Infinity", "nan", 1e400):
    imputing it would answer for a row nobody sent. A missing value (null, or a NaN that a
    CSV reader made of an empty cell) is imputed, as training did."""
    if isinstance(v, float | np.floating):
        return not math.isinf(v)
    if not isinstance(v, str) or (is_missing(v) and v.strip().lower() not in ("nan", "-nan")):
        return True
    try:
        return math.isfinite(float(v))
    except ValueError:
        return True  # not a number at all: the transform says so, naming the row


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


def _texts(col: pd.Series) -> list[str | None]:
    return [None if is_missing(v) else as_category(v) for v in col.tolist()]


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
