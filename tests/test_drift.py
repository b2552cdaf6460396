"""Input drift: a server's rows that match the training rows are stable, rows that moved are
flagged by column, and nothing is said before enough rows were seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studio.core import drift
from studio.core.datasets.recipe import fit_recipe, transform


def table(n: int, seed: int, shift: float = 0.0, colour_p: tuple = (0.6, 0.3, 0.1)
          ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(10 + shift, 2, n),
        "weight": rng.exponential(3, n),
        "colour": rng.choice(["red", "green", "blue"], n, p=list(colour_p)),
        "y": rng.integers(0, 2, n),
    })


def monitor_for(train: pd.DataFrame) -> tuple[dict, drift.DriftMonitor]:
    recipe = fit_recipe(train, "y", "classification")
    ref = drift.reference(recipe, transform(recipe, train))
    assert ref is not None
    return recipe, drift.DriftMonitor(ref)


def test_rows_like_the_training_rows_are_stable() -> None:
    recipe, monitor = monitor_for(table(4000, 0))
    for chunk in np.array_split(transform(recipe, table(3000, 1)), 300):  # many small calls
        monitor.observe({"input": chunk})
    report = monitor.report()
    assert report["ready"] and report["window_rows"] == 3000
    assert report["moved"] == []
    assert all(c["psi"] < 0.05 for c in report["columns"])


def test_a_moved_column_is_named_and_the_others_are_not() -> None:
    recipe, monitor = monitor_for(table(4000, 0))
    served = table(2000, 2, shift=3.0, colour_p=(0.1, 0.3, 0.6))
    monitor.observe({"input": transform(recipe, served)})
    report = monitor.report()
    assert set(report["moved"]) == {"size", "colour"}
    psi = {c["column"]: c["psi"] for c in report["columns"]}
    assert psi["weight"] < 0.05 < drift.PSI_MOVED < psi["size"]


def test_unknown_categories_count_as_a_bin_of_their_own() -> None:
    recipe, monitor = monitor_for(table(4000, 0))
    served = table(1000, 3)
    served["colour"] = "purple"  # never seen in training: all zeros in the one-hot block
    monitor.observe({"input": transform(recipe, served)})
    assert monitor.report()["moved"] == ["colour"]


def test_too_few_rows_say_nothing_yet() -> None:
    recipe, monitor = monitor_for(table(4000, 0))
    monitor.observe({"input": transform(recipe, table(50, 4, shift=10.0))})
    report = monitor.report()
    assert not report["ready"] and report["moved"] == []
    assert all(c["psi"] is None for c in report["columns"])


def test_the_window_forgets_old_rows() -> None:
    recipe, monitor = monitor_for(table(4000, 0))
    monitor.observe({"input": transform(recipe, table(3000, 5, shift=4.0))})
    assert "size" in monitor.report()["moved"]
    window = drift.WINDOW_BUCKETS * drift.BUCKET_ROWS
    monitor.observe({"input": transform(recipe, table(window, 6))})  # back to normal
    assert monitor.report()["moved"] == []
