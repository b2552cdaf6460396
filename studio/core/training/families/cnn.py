"""The cnn family: A small convolutional network for pictures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class CNN:
    name = "cnn"
    title = "Convolutional network"
    description = "A small convolutional network for pictures."
    params: tuple[Param, ...] = (
        *loop_params(epochs=40, batch_size=32, learning_rate=3e-3, patience=10),
        Param("hidden", [64, 64], "ints", "Widths of the hidden layers, comma-separated.", 1,
              4096),
        Param("dropout", 0.1, "float", "Share of units silenced at random in training: "
              "more of it fights overfitting.", 0.0, 0.9),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "image":
            return "a convolutional network needs pictures"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        from studio.core.training.families.network import train_network

        return train_network(self.name, data, params, ctx, hidden=list(params["hidden"]),
                             dropout=float(params["dropout"]))


FAMILY = CNN()
