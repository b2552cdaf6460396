"""Training a :class:`~studio.core.training.model.StudioNet` (the network with a branch per
input: table features, token ids, a picture) through the shared loop: what the linear,
embedding and cnn families have in common."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from studio.core.datasets.text import EMBEDDING_DIM
from studio.core.errors import InputError
from studio.core.events import Log
from studio.core.training.families.base import FitContext, TrainData

SHOWN_SKIPPED = 20  # unreadable pictures named in the log and the details


def train_network(family: str, data: TrainData, params: Mapping[str, Any], ctx: FitContext,
                  hidden: list[int], dropout: float,
                  augment: Callable[..., Any] | None = None,
                  image: Mapping[str, int] | None = None,
                  text_dim: int = EMBEDDING_DIM) -> Any:
    """``image``: the picture branch's shape (see ``build_model``), kept in the details;
    ``text_dim``: width of a token's vector (the text branch's, when there is text)."""
    import torch

    from studio.core.training.data import ModelData
    from studio.core.training.loop import TorchFitted, fit, loop_details
    from studio.core.training.model import build_model

    torch.manual_seed(ctx.seed)
    device = torch.device(ctx.device)
    model_data = ModelData(data.recipe, data.frame, device, ctx.emit, scratch=data.scratch,
                           skip_unreadable=True)
    skipped = skip_unreadable(family, data, model_data.unreadable, ctx)
    n_out = data.n_classes if data.task == "classification" else 1
    y_scale = (0.0, 1.0)
    if data.task == "regression":
        y_tr = data.y[data.train]
        y_scale = (float(y_tr.mean()), float(y_tr.std()) or 1.0)
    model = build_model(data.inputs, n_out, hidden, dropout, y_scale, image,
                        text_dim).to(device)
    ctx.emit(Log(f"{family}: {sum(p.numel() for p in model.parameters()):,} weights, "
                 f"hidden layers {hidden or 'none'}"))
    result = fit(model, data, model_data.batch, params, ctx, family, augment)
    details = loop_details(result, params)
    details["hidden"] = hidden
    if image is not None:
        details["image_encoder"] = dict(image)
    if model_data.unreadable:
        details["skipped_images"] = len(model_data.unreadable)
        details["skipped_image_list"] = skipped
    if "tokens" in model_data.names:  # what rebuilding this network from its weights needs
        details["text_dim"] = text_dim
    return TorchFitted(family, model, data, model_data.batch, details)


def skip_unreadable(family: str, data: TrainData, unreadable: list[tuple[int, str]],
                    ctx: FitContext) -> list[str]:
    """Leave pictures that could not be decoded out of every split (in place, so what
    validates and tests the model after this family leaves them out too), say so in a
    warning, and return the first few as lines for the details."""
    if not unreadable:
        return []
    bad = np.array([row for row, _ in unreadable])
    parts = tuple(p[~np.isin(p, bad)] for p in data.parts)
    for name, before, after in zip(("training", "validation", "test"), data.parts, parts,
                                   strict=True):
        if len(before) and not len(after):
            raise InputError(f"no {name} rows are left once the {len(bad)} picture(s) that "
                             "cannot be read are left out: import the folder again")
    data.parts = parts  # type: ignore[assignment]
    lines = [f"row {row}, {why}" for row, why in unreadable[:SHOWN_SKIPPED]]
    more = len(unreadable) - len(lines)
    ctx.emit(Log(f"{family}: skipped {len(unreadable)} picture(s) that cannot be decoded: "
                 + "; ".join(lines) + (f"; and {more} more" if more else ""), "warning"))
    return lines
