"""The boosted-trees family: gradient-boosted decision trees (LightGBM) on the table columns.

The knobs are declared here without importing LightGBM (the GUI lists them); training lives
in :mod:`studio.core.training.boosting`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData


class BoostedTrees:
    name = "boosted-trees"
    title = "Boosted trees"
    description = ("Gradient-boosted decision trees (LightGBM) on the table columns: strong "
                   "on tables and quick on a CPU.")
    params: tuple[Param, ...] = (
        Param("rounds", 1000, "int", "Boosting rounds at most (a tree each, a tree per "
              "class with several classes); early stopping and the time budget usually end "
              "training sooner.", 1, 100_000),
        Param("learning_rate", 0.05, "float", "How much each new tree corrects the ones "
              "before it: lower learns slower but often ends better.", 1e-4, 1.0, log=True),
        Param("leaves", 31, "int", "Leaves per tree at most: more of them fit finer "
              "patterns, and overfit sooner.", 2, 4096),
        Param("min_child_samples", 20, "int", "Training rows a leaf needs at least; larger "
              "values smooth the model. Lowered on small training sets so trees can still "
              "split.", 1, 1_000_000),
        Param("feature_fraction", 0.8, "float", "Share of the columns each tree may look at, "
              "drawn at random: below 1 it decorrelates the trees.", 0.05, 1.0),
        Param("subsample", 0.8, "float", "Share of the training rows each tree is grown on, "
              "drawn anew for every tree: below 1 it fights overfitting.", 0.05, 1.0),
        Param("lambda_l2", 0.0, "float", "Pulls leaf values towards zero: more of it fights "
              "overfitting.", 0.0, 1000.0),
        Param("patience", 50, "int", "Stop after this many rounds without a lower validation "
              "loss (0: never stop early). The best round's trees are kept.", 0, 100_000),
        Param("class_weights", False, "bool", "Weigh each class by how rare it is in the "
              "training split, so a small class counts as much as a large one."),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "tabular":
            return "boosted trees work on table columns; text and pictures need a neural network"
        if task not in ("classification", "regression"):
            return f"boosted trees do classification and regression, not {task}"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.boosting import train_booster

        return train_booster(self.name, data, params, ctx)


FAMILY = BoostedTrees()
