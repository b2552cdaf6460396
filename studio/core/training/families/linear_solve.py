"""The linear family on table columns, solved exactly: L-BFGS for logistic regression,
closed form for ridge regression; the penalty chosen on the validation split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from studio.core.events import Log, Metric, Progress
from studio.core.training.families.base import FitContext, TrainData
from studio.core.training.families.linear import C_GRID
from studio.core.training.loop import TorchFitted
from studio.core.training.model import build_model


def fit_tabular(family: str, data: TrainData, params: Mapping[str, Any],
                ctx: FitContext) -> TorchFitted:
    torch.manual_seed(ctx.seed)
    x = torch.from_numpy(data.matrix()).double()  # the solver's copy, freed on return
    tr, va = torch.from_numpy(data.train), torch.from_numpy(data.validation)
    grid = [float(params["C"])] if params["C"] else list(C_GRID)
    classify = data.task == "classification"
    y = torch.from_numpy(data.y)
    mean, scale = 0.0, 1.0
    if not classify:
        mean, scale = float(y[tr].double().mean()), float(y[tr].double().std()) or 1.0
    target = y if classify else (y.double() - mean) / scale
    fits = []
    warm = None
    for i, c in enumerate(grid):
        if i and (ctx.should_stop() or ctx.out_of_time()):
            break
        w, b = (_logistic(x[tr], target[tr], data.n_classes, c, params, warm) if classify
                else _ridge(x[tr], target[tr], c))
        warm = (w, b)
        out = x[va] @ w + b
        if classify:
            score = float((out.argmax(1) == target[va]).double().mean())
            loss = float(torch.nn.functional.cross_entropy(out, target[va]))
        else:
            residual = out.reshape(-1) - target[va]
            spread = float(((target[va] - target[va].mean()) ** 2).sum())
            loss = float((residual ** 2).mean())
            score = 1 - float((residual ** 2).sum()) / spread if spread else 0.0
        fits.append(((round(score, 9), -loss), c, w, b))
        ctx.emit(Metric("val_accuracy" if classify else "val_r2", score, i + 1, i + 1))
        ctx.emit(Metric("val_loss", loss, i + 1, i + 1))
        ctx.emit(Progress("train", i + 1, len(grid), f"{family}: C={c:g}"))
    _, c, w, b = max(fits, key=lambda f: f[0])
    if len(fits) > 1:
        ctx.emit(Log(f"{family}: C={c:g} is best on the validation split"))
    model = build_model(data.inputs, data.n_classes if classify else 1, [], 0.0,
                        (mean, scale))
    with torch.no_grad():
        layer = model.net[0]
        layer.weight.copy_(w.T.float())
        layer.bias.copy_(b.reshape(-1).float())
    model.eval()
    xf = torch.from_numpy(data.matrix())  # the float32 matrix itself, not a third copy
    details = {"epochs_run": len(fits), "best_epoch": grid.index(c) + 1, "stopped": None,
               "C": c, "params": dict(params)}
    return TorchFitted(family, model, data, lambda rows: [xf[torch.from_numpy(rows)]], details)


def _logistic(x: torch.Tensor, y: torch.Tensor, k: int, c: float, params: Mapping[str, Any],
              warm: tuple[torch.Tensor, torch.Tensor] | None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: mean cross-entropy + |W|² / (2 C n), as
    scikit-learn's LogisticRegression(C) minimizes (up to the factor n)."""
    n, d = x.shape
    w = (warm[0].clone() if warm else torch.zeros(d, k, dtype=torch.float64)).requires_grad_()
    b = (warm[1].clone() if warm else torch.zeros(k, dtype=torch.float64)).requires_grad_()
    weight = None
    if params.get("class_weights"):
        counts = torch.bincount(y, minlength=k).double()
        weight = torch.where(counts > 0, n / (k * counts.clamp(min=1)), torch.zeros_like(counts))
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=int(params["max_iter"]),
                            tolerance_grad=1e-6, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y, weight=weight)
        loss = loss + (w ** 2).sum() / (2 * c * n)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _ridge(x: torch.Tensor, y: torch.Tensor, c: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge regression in closed form with penalty 1/C, the intercept not penalized."""
    xm, ym = x.mean(0), y.mean()
    xc = x - xm
    gram = xc.T @ xc + torch.eye(x.shape[1], dtype=x.dtype) / c
    w = torch.linalg.solve(gram, xc.T @ (y - ym)).reshape(-1, 1)
    return w, (ym - xm @ w).reshape(1)


__all__ = ["fit_tabular", "np"]
