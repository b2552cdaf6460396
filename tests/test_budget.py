"""The automatic time budget and the plan the GUI reads before a run: from the column
profile, the same input columns and modality the fitted recipe then has."""

from __future__ import annotations

import pandas as pd
import pytest
from synthetic import reviews

from studio.core.datasets.prepare import prepare
from studio.core.datasets.profile import column_profile
from studio.core.training.budget import default_budget, planned


def _profile(frame: pd.DataFrame) -> list[dict]:
    return [column_profile(frame[c]) for c in frame.columns]


@pytest.mark.parametrize("options", [None, {"columns": {"island": {"encode": "ordinal"},
                                                        "year": {"drop": True}}}])
def test_the_plan_matches_the_fitted_recipe(penguins_csv, options):
    frame = pd.read_csv(penguins_csv)
    plan = planned(_profile(frame), "species", options)
    recipe = prepare(frame, "penguins", "species", "auto", [0.7, 0.15, 0.15], 0,
                     options or {}).recipe
    assert plan.features == len(recipe["features"])  # a category counts once
    assert (plan.rows, plan.modality) == (344, "tabular")
    assert plan.budget() == default_budget(344, plan.features, "tabular") == 20.0


def test_a_text_column_makes_a_text_plan_unless_dropped():
    frame = reviews(60)
    assert planned(_profile(frame), "sentiment").modality == "text"
    dropped = {"columns": {"review": {"drop": True}}}
    assert planned(_profile(frame), "sentiment", dropped) == (60, 1, "tabular")


def test_the_budget_grows_with_the_data():
    assert default_budget(50_000, 20, "tabular") == pytest.approx(50.0)
    assert default_budget(10**7, 100, "tabular") == 900  # capped
    assert default_budget(100, 0, "image") == 60
    assert default_budget(100_000, 0, "text") > default_budget(1_000, 0, "text")
