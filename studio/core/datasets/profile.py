"""Column kinds and the suggested target and task, from a DataFrame."""

from __future__ import annotations

from typing import Any

import pandas as pd

MAX_CATEGORIES = 50
MAX_CLASSES = 30
TARGET_NAMES = ("target", "label", "class", "y", "outcome")


def column_kind(series: pd.Series) -> str:
    """numeric, boolean, categorical, datetime or text (text: too many distinct values)."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    unique = series.nunique(dropna=True)
    if unique <= MAX_CATEGORIES or unique <= 0.05 * max(1, series.notna().sum()):
        return "categorical"
    return "text"


def column_profile(series: pd.Series) -> dict[str, Any]:
    kind = column_kind(series)
    values = series.dropna()
    profile = {
        "name": str(series.name),
        "dtype": str(series.dtype),
        "kind": kind,
        "missing": int(series.isna().sum()),
        "unique": int(values.nunique()),
        "count": len(values),
    }
    if kind == "numeric":
        profile["integral"] = bool((values == values.round()).all()) if len(values) else True
    return profile


def profile_columns(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [column_profile(df[name]) for name in df.columns]


def suggest_target(columns: list[dict[str, Any]]) -> str:
    """A column named like a target, else the last categorical one, else the last column."""
    for col in columns:
        if col["name"].strip().lower() in TARGET_NAMES:
            return col["name"]
    for col in reversed(columns):
        if col["kind"] in ("categorical", "boolean") and 2 <= col["unique"] <= MAX_CLASSES:
            return col["name"]
    return columns[-1]["name"]


def suggest_task(profile: dict[str, Any]) -> str:
    """classification for labels and small integer codes, regression for other numbers."""
    if profile["kind"] == "numeric":
        small = profile["unique"] <= min(MAX_CLASSES, max(2, profile.get("count", 0) // 10))
        return "classification" if profile.get("integral") and small else "regression"
    return "classification"
