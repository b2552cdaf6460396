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


def profile_columns(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "name": str(name),
            "dtype": str(df[name].dtype),
            "kind": column_kind(df[name]),
            "missing": int(df[name].isna().sum()),
            "unique": int(df[name].nunique(dropna=True)),
        }
        for name in df.columns
    ]


def suggest_target(columns: list[dict[str, Any]]) -> str:
    """A column named like a target, else the last categorical one, else the last column."""
    for col in columns:
        if col["name"].strip().lower() in TARGET_NAMES:
            return col["name"]
    for col in reversed(columns):
        if col["kind"] in ("categorical", "boolean") and 2 <= col["unique"] <= MAX_CLASSES:
            return col["name"]
    return columns[-1]["name"]


def suggest_task(series: pd.Series) -> str:
    """classification for labels and small integer codes, regression for other numbers."""
    kind = column_kind(series)
    if kind == "numeric":
        values = series.dropna()
        integral = bool((values == values.round()).all()) if len(values) else True
        if integral and values.nunique() <= min(MAX_CLASSES, max(2, len(values) // 10)):
            return "classification"
        return "regression"
    return "classification"
