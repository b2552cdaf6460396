"""The embedding family: learned word vectors, averaged, into a small network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class Embedding:
    name = "embedding"
    title = "Word embeddings"
    description = ("Averages learned word vectors (and the table columns beside them) into a "
                   "small network.")
    params: tuple[Param, ...] = (
        *loop_params(epochs=40, batch_size=32, learning_rate=3e-3, patience=10),
        Param("hidden", [64, 64], "ints", "Widths of the hidden layers, comma-separated.", 1,
              4096),
        Param("dropout", 0.1, "float", "Share of units silenced at random in training: "
              "more of it fights overfitting.", 0.0, 0.9),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "text":
            return "word embeddings need a text column"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.families.network import train_network

        return train_network(self.name, data, params, ctx, hidden=list(params["hidden"]),
                             dropout=float(params["dropout"]))


FAMILY = Embedding()
