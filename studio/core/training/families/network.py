"""Training a :class:`~studio.core.training.model.StudioNet` (the network with a branch per
input: table features, token ids, a picture) through the shared loop: what the linear,
embedding and cnn families have in common."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from studio.core.events import Log
from studio.core.training.families.base import FitContext, TrainData


def train_network(family: str, data: TrainData, params: Mapping[str, Any], ctx: FitContext,
                  hidden: list[int], dropout: float,
                  augment: Callable[..., Any] | None = None) -> Any:
    import torch

    from studio.core.training.data import ModelData
    from studio.core.training.loop import TorchFitted, fit, loop_details
    from studio.core.training.model import build_model

    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)
    model_data = ModelData(data.recipe, data.frame, device, ctx.emit, scratch=data.scratch)
    n_out = data.n_classes if data.task == "classification" else 1
    y_scale = (0.0, 1.0)
    if data.task == "regression":
        y_tr = data.y[data.train]
        y_scale = (float(y_tr.mean()), float(y_tr.std()) or 1.0)
    model = build_model(data.inputs, n_out, hidden, dropout, y_scale).to(device)
    ctx.emit(Log(f"{family}: {sum(p.numel() for p in model.parameters()):,} weights, "
                 f"hidden layers {hidden or 'none'}"))
    result = fit(model, data, model_data.batch, params, ctx, family, augment)
    details = loop_details(result, params)
    details["hidden"] = hidden
    return TorchFitted(family, model, data, model_data.batch, details)
