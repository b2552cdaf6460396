"""Logistic or linear regression: the quick baseline every leaderboard starts with.

One linear map from the table features (and, for text, the mean of the words' vectors, which
is still linear in the words) to the classes or the value, trained by the shared loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class Linear:
    name = "linear"
    title = "Linear"
    description = ("Logistic regression for classes, linear regression for values: fast, "
                   "and the baseline to beat.")
    params: list[Param] = loop_params(epochs=100, batch_size=256, learning_rate=1e-2,
                                      weight_decay=1e-4, patience=10, schedule="cosine")

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality == "image":
            return "a linear model on raw pixels is no match for a convolutional network"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.families.network import train_network

        return train_network(self.name, data, params, ctx, hidden=[], dropout=0.0)


FAMILY = Linear()
