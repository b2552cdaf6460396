"""The mlp family: a RealMLP-style network on the table columns (Holzmüller et al. 2024),
trained by the shared loop with the paper's defaults: robust scaling with a smooth clip,
periodic embeddings of the numbers, a learned input scale, parametric activations, the
coslog4 learning-rate schedule and label smoothing. The network is in
:mod:`studio.core.training.realmlp`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.training.families.base import FitContext, Fitted, Param, TrainData
from studio.core.training.families.knobs import loop_params


class MLP:
    name = "mlp"
    title = "Multilayer perceptron"
    description = ("A neural network on the table columns, with tuned defaults (RealMLP): "
                   "strong on smooth numeric relations, slower than trees.")
    params: tuple[Param, ...] = (
        *loop_params(epochs=256, batch_size=256, learning_rate=0.04, weight_decay=0.02,
                     patience=0, schedule="coslog4", label_smoothing=0.1),
        Param("hidden", [256, 256, 256], "ints", "Widths of the hidden layers, "
              "comma-separated.", 1, 4096),
        Param("dropout", 0.15, "float", "Share of units silenced at random in training "
              "(fading out over the second half): more of it fights overfitting.", 0.0, 0.9),
        Param("activation", "auto", "str", "The units' nonlinearity: auto takes selu for "
              "classes and mish for values.", choices=("auto", "selu", "mish", "relu")),
        Param("periodic_embeddings", True, "bool", "Feed each numeric column through "
              "learned sine waves as well, so sharp or wiggly effects of a number are easy "
              "to learn."),
        Param("smooth_clip", True, "bool", "Squash extreme values smoothly towards ±3 "
              "(after a scaling by median and quartiles), so outliers do not dominate."),
    )

    def unfit_reason(self, task: str, modality: str) -> str | None:
        if modality != "tabular":
            return "the mlp works on table columns; text and pictures have their own networks"
        return None

    def train(self, data: TrainData, params: Mapping[str, Any], ctx: FitContext) -> Fitted:
        import torch

        from studio.core.events import Log
        from studio.core.training.loop import TorchFitted, fit, loop_details
        from studio.core.training.realmlp import RealMLP

        torch.manual_seed(ctx.seed)
        device = torch.device(ctx.device)
        matrix = data.matrix()
        x_train = matrix[data.train]
        classify = data.task == "classification"
        y_scale, y_range = (0.0, 1.0), None
        if not classify:
            y_tr = data.y[data.train].astype("float64")
            y_scale = (float(y_tr.mean()), float(y_tr.std()) or 1.0)
            y_range = ((float(y_tr.min()) - y_scale[0]) / y_scale[1],
                       (float(y_tr.max()) - y_scale[0]) / y_scale[1])
        activation = str(params["activation"])
        if activation == "auto":
            activation = "selu" if classify else "mish"
        model = RealMLP(
            x_train, numeric_columns(data.recipe), data.n_classes if classify else 1,
            list(params["hidden"]), float(params["dropout"]), activation,
            bool(params["periodic_embeddings"]), bool(params["smooth_clip"]), y_scale,
            y_range, seed=ctx.seed).to(device)
        ctx.emit(Log(f"{self.name}: {sum(p.numel() for p in model.parameters()):,} weights, "
                     f"hidden layers {list(params['hidden'])}"))
        x_all = torch.from_numpy(matrix).to(device)

        def batch(rows: Any) -> list[Any]:
            return [x_all[torch.from_numpy(rows).to(device)]]

        result = fit(model, data, batch, params, ctx, self.name)
        details = loop_details(result, params)
        return TorchFitted(self.name, model, data, batch, details)


def numeric_columns(recipe: Mapping[str, Any]) -> list[int]:
    """Positions of the numeric (and ordinal) columns in the ``input`` matrix; one-hot
    columns are not embedded."""
    out, j = [], 0
    for f in recipe["features"]:
        if f["kind"] in ("numeric", "ordinal"):
            out.append(j)
            j += 1
        elif f["kind"] == "categorical":
            j += len(f["categories"])
    return out


FAMILY = MLP()
