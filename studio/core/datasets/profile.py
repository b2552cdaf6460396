"""Column kinds, statistics and warnings; the suggested target and task."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets.pixels import IMAGE_SUFFIXES
from studio.core.datasets.text import WORD, tokens

MAX_CATEGORIES = 50
MAX_CLASSES = 30
MIN_ROWS_FOR_ID = 20
# Exact names first, in this order; then a column with one of TARGET_WORDS in its name.
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "species", "price",
                "saleprice", "sale_price", "churn", "survived", "diagnosis", "sentiment",
                "quality", "rating", "category", "grade", "default", "fraud", "is_fraud",
                "response", "result")
TARGET_WORDS = {"target", "label", "class", "outcome", "price", "churn", "survived",
                "diagnosis", "sentiment", "fraud"}
_ID_NAME = re.compile(r"(^|[_ ])(id|ID|Id|uuid|UUID|guid|GUID)$|^(id|ID)[_ ]|[a-z]Id$")
# Bump when the kind rules change: profiles cached under other rules are computed again.
PROFILE_RULES = 4
HISTOGRAM_BINS = 20
KIND_SAMPLE = 5000
TOP_VALUES = 10
TOP_WORDS = 12
WORD_SAMPLE = 20_000  # values read for the frequent words: bounded time on any column
# Words that say nothing about what a text is about: left out of its frequent words.
_STOP = """
a about after all also am an and any are as at be been before being but by can could did do
does doing for from had has have having he her here hers him his how i if in into is it its
just me more most my of off on once only or other our out over own same she should so some
such than that the their them then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your
"""
STOP_WORDS = frozenset(_STOP.split())


# Values Parquet and Feather can hold that no step learns from: profiled by their sizes,
# dropped from training with their kind as the reason.
NESTED_UNITS = {"list": "items", "binary": "bytes", "struct": "fields"}
_NESTED_SAMPLE = 100


def column_kind(series: pd.Series) -> str:
    """numeric, boolean, categorical, datetime, text, identifier or image path; list,
    binary or struct for nested values (see :func:`nested_kind`)."""
    values = series.dropna()
    return nested_kind(series, values) or _kind(series, values, None)


def nested_kind(series: pd.Series, values: pd.Series | None = None) -> str | None:
    """list (Arrow lists and maps), binary (bytes) or struct (dicts), judged on the first
    values: a Parquet column has one type. None for anything else."""
    if series.dtype != object:
        return None
    head = (series.dropna() if values is None else values).iloc[:_NESTED_SAMPLE]
    if not len(head):
        return None
    for kind, types in (("binary", (bytes, bytearray, memoryview)),
                        ("list", (np.ndarray, list, tuple)), ("struct", (dict,))):
        if all(isinstance(v, types) for v in head):
            return kind
    return None


def _kind(series: pd.Series, values: pd.Series, unique: int | None) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    n = len(values)
    if pd.api.types.is_numeric_dtype(series):
        if n >= MIN_ROWS_FOR_ID and _looks_like_integer_ids(values, str(series.name), unique):
            return "identifier"
        return "numeric"
    unique = values.nunique() if unique is None else unique
    # Shape checks look at a sample: a million paths or ids need not all be read to tell.
    sample = values.iloc[:KIND_SAMPLE].astype(str)
    if n and sample.str.lower().str.endswith(IMAGE_SUFFIXES).mean() > 0.9:
        return "image path"
    # Words are what spaces separate: "ORD-2023-01", an e-mail or a UUID is one word.
    words = sample.str.split().str.len().mean() if n else 0.0
    if words >= 4 and unique > 0.5 * n:  # sentences, however few rows there are
        return "text"
    if unique <= MAX_CATEGORIES or unique <= 0.05 * max(1, n):
        return "categorical"
    if n >= MIN_ROWS_FOR_ID and unique == n and sample.str.len().mean() < 40 and words < 2:
        return "identifier"
    return "text"


def _looks_like_integer_ids(values: pd.Series, name: str, unique: int | None) -> bool:
    """Whole numbers, all different, named like an id. Not order: a file sorted by a real
    feature (square metres, say) must keep it."""
    if not _ID_NAME.search(name):
        return False
    unique = values.nunique() if unique is None else unique
    return unique == len(values) and bool((values == values.round()).all())


def column_profile(series: pd.Series) -> dict[str, Any]:
    values = series.dropna()
    nested = nested_kind(series, values)
    if nested is not None:
        return _nested_profile(series, values, nested)
    unique = int(values.nunique())
    kind = _kind(series, values, unique)
    total = len(series)
    profile: dict[str, Any] = {
        "name": str(series.name),
        "dtype": str(series.dtype),
        "kind": kind,
        "missing": int(total - len(values)),
        "unique": unique,
        "count": len(values),
    }
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and len(values):
        numbers = values.astype("float64")
        numbers = numbers[np.isfinite(numbers)]
        profile["integral"] = bool((numbers == numbers.round()).all())
        if len(numbers):
            profile.update(min=float(numbers.min()), max=float(numbers.max()),
                           mean=float(numbers.mean()), std=float(numbers.std(ddof=0)))
            counts, edges = np.histogram(numbers, bins=HISTOGRAM_BINS)
            profile["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    elif kind == "datetime" and len(values):
        profile.update(min=str(values.min()), max=str(values.max()))
    if kind == "text" and len(values):
        # Ten long texts seen once each say nothing: their lengths and words do.
        profile.update(_text_stats(values.astype(str)))
    elif kind != "numeric" and len(values):
        top = values.value_counts().head(TOP_VALUES)  # counted as they are, named as text
        profile["top"] = [[str(k), int(v)] for k, v in top.items()]
    profile["warnings"] = _warnings(profile, total)
    return profile


def _nested_profile(series: pd.Series, values: pd.Series, kind: str) -> dict[str, Any]:
    """Missing and distinct values, and a histogram of sizes: items of a list, bytes of a
    binary value, filled fields of a struct. Never the values' text: bytes need not be."""
    total = len(series)
    profile: dict[str, Any] = {
        "name": str(series.name), "dtype": str(series.dtype), "kind": kind,
        "missing": int(total - len(values)),
        "unique": len({_hashable(v) for v in values}), "count": len(values),
    }
    if len(values):
        sizes = values.map(lambda v: sum(x is not None for x in v.values())
                           if isinstance(v, dict) else len(v)).to_numpy(dtype=np.int64)
        profile["sizes"] = {"unit": NESTED_UNITS[kind], **_count_histogram(sizes)}
    profile["warnings"] = [*_warnings(profile, total), f"{kind} values are not used in training"]
    return profile


def _hashable(value: Any) -> Any:
    if isinstance(value, np.ndarray | list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _count_histogram(lengths: np.ndarray) -> dict[str, Any]:
    """Whole-number bins; the largest 1 % share the last bar so one essay (or one huge
    list) cannot flatten the rest."""
    lo, hi = int(lengths.min()), int(np.percentile(lengths, 99))
    width = max(1, -(-(hi - lo + 1) // HISTOGRAM_BINS))
    edges = np.arange(lo, hi + width + 1, width) - 0.5
    counts, _ = np.histogram(np.minimum(lengths, hi), bins=edges)
    return {"counts": counts.tolist(), "edges": edges.tolist(), "min": lo,
            "median": float(np.median(lengths)), "max": int(lengths.max()),
            "longest_in_last_bin": hi}


def _text_stats(values: pd.Series) -> dict[str, Any]:
    """Words per value (every value: a vectorized count) and the most frequent words of a
    spread sample of :data:`WORD_SAMPLE` values, lower-cased, without stop words and
    one-letter words. Words are what the text step tokenizes (``text.WORD``)."""
    lengths = values.str.count(WORD.pattern).to_numpy(dtype=np.int64)
    if len(values) > WORD_SAMPLE:
        rng = np.random.default_rng(0)
        values = values.iloc[np.sort(rng.choice(len(values), WORD_SAMPLE, replace=False))]
    words: Counter[str] = Counter()
    for text in values:
        words.update(w for w in tokens(text) if len(w) > 1 and w not in STOP_WORDS)
    return {
        "lengths": _count_histogram(lengths),
        "words": [[w, int(n)] for w, n in words.most_common(TOP_WORDS)],
        "words_sample": len(values),
    }


def _warnings(p: dict[str, Any], total: int) -> list[str]:
    out = []
    if p["unique"] <= 1:
        out.append("constant")
    if total and p["missing"] / total > 0.5:
        out.append(f"mostly missing ({p['missing'] / total:.0%})")
    if p["kind"] == "identifier":
        out.append("likely an identifier")
    if p["kind"] == "categorical" and p["unique"] > MAX_CATEGORIES:  # text is meant to vary
        out.append(f"high cardinality ({p['unique']:,} values)")
    top = p.get("top")
    if p["kind"] in ("categorical", "boolean") and top and 2 <= p["unique"] <= MAX_CLASSES:
        smallest = min(v for _, v in top) if p["unique"] <= TOP_VALUES else None
        if smallest is not None and smallest / top[0][1] < 0.1:
            out.append(f"imbalanced classes (smallest {smallest:,} vs largest {top[0][1]:,})")
    return out


def profile_columns(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [column_profile(df[name]) for name in df.columns]


@dataclass(frozen=True)
class TargetSuggestion:
    name: str
    reason: str  # why, in a few words a person reads beside the choice


def suggest_target(columns: list[dict[str, Any]]) -> TargetSuggestion | None:
    """The column a person would predict: one named like a target (label, class, species,
    price…), else a last column with a few classes (the usual place of a label); None when
    nothing says which: then the person is asked, never guessed for."""
    if len(columns) < 2:
        return None  # a target needs at least one column to learn it from
    usable = [c for c in columns if c["kind"] in ("categorical", "boolean", "numeric")
              and c["unique"] >= 2]
    by_name = {_normal(c["name"]): c for c in usable}
    for wanted in TARGET_NAMES:
        if wanted in by_name:
            return TargetSuggestion(by_name[wanted]["name"], "named like a target")
    for col in usable:
        if _words(col["name"]) & TARGET_WORDS:
            return TargetSuggestion(col["name"], "named like a target")
    last = columns[-1] if columns else None
    if last is not None and last in usable and last["kind"] != "numeric" \
            and last["unique"] <= MAX_CLASSES:
        return TargetSuggestion(last["name"], "the last column, with few classes")
    return None


def _normal(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().lower())


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)  # SalePrice → Sale Price
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w}


def suggest_task(profile: dict[str, Any], others: Sequence[dict[str, Any]] = ()) -> str:
    """classification for labels and small integer codes, regression for other numbers;
    text-classification when ``others`` (the other columns' profiles) hold long text."""
    if profile["kind"] in ("numeric", "identifier"):
        small = profile["unique"] <= min(MAX_CLASSES, max(2, profile.get("count", 0) // 10))
        return "classification" if profile.get("integral") and small else "regression"
    if any(o["kind"] == "text" and o["name"] != profile["name"] for o in others):
        return "text-classification"
    return "classification"
