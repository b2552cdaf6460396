"""A RealMLP-style network for tables (after Holzmüller et al. 2024, "Better by Default").

What sets it apart from a plain MLP, each piece inside the graph so serving applies it too:

- robust scaling of every input column (median and quartiles of the training rows, held
  as fixed buffers) and a smooth clip ``x / sqrt(1 + (x/3)^2)`` that tames outliers without
  a hard edge;
- periodic embeddings of the numeric columns (PBLD: per column, 16 cosines of learned
  frequencies and phases mapped linearly to 3 values, with the column itself beside them);
- a learned scale per input of the first layer (a soft feature selection, trained fast);
- layers in the neural-tangent parametrization (weights drawn from N(0, 1), the product
  divided by the square root of the fan-in), initialized from the data: each unit's
  pre-activation has unit spread on the training rows and its kink passes through them;
- parametric activations (each unit blends its nonlinearity with the identity, learned);
- parameter groups with their own learning-rate factors, and a dropout and a weight decay
  that stay flat, then fade over the second half of training.

Regression outputs are clipped to the training targets' range at prediction time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PLR_FREQUENCIES = 16
PLR_OUT = 3  # plus the column itself: 4 values per numeric column
PLR_SIGMA = 0.1
INIT_ROWS = 1024
# learning-rate factors of the parameter groups (the paper's defaults)
LR_SCALE, LR_BIAS, LR_ACT, LR_PLR = 6.0, 0.1, 0.1, 0.1
BETAS = (0.9, 0.95)


def robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the median, and 1 / the interquartile range (half the full range where
    the quartiles meet, as in a one-hot column; 0 for a constant column, which stays 0)."""
    center = np.median(x, axis=0)
    spread = np.quantile(x, 0.75, axis=0) - np.quantile(x, 0.25, axis=0)
    flat = spread == 0
    spread[flat] = 0.5 * (x.max(axis=0) - x.min(axis=0))[flat]
    factor = np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 0.0)
    return center.astype(np.float32), factor.astype(np.float32)


def mish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tanh(F.softplus(x))


ACTIVATIONS = {"selu": torch.selu, "mish": mish, "relu": torch.relu}


class PeriodicEmbedding(nn.Module):
    """PBLD: ``cos(2π·w·x + b)`` at 16 frequencies per column, a linear map per column to 3
    values, and the column itself appended (Gorishniy et al.'s periodic embeddings with
    the bias and dense-net changes of RealMLP)."""

    def __init__(self, n: int, gen: torch.Generator) -> None:
        super().__init__()
        k = PLR_FREQUENCIES
        self.w1 = nn.Parameter(PLR_SIGMA * torch.randn(n, k, generator=gen))
        self.b1 = nn.Parameter(math.pi * (2 * torch.rand(n, k, generator=gen) - 1))
        bound = 1 / math.sqrt(k)
        self.w2 = nn.Parameter(bound * (2 * torch.rand(n, k, PLR_OUT, generator=gen) - 1))
        self.b2 = nn.Parameter(bound * (2 * torch.rand(n, 1, PLR_OUT, generator=gen) - 1))
        self.width = n * (PLR_OUT + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.cos(2 * math.pi * x.unsqueeze(-1) * self.w1 + self.b1)  # [B, n, k]
        e = torch.matmul(h.transpose(0, 1), self.w2) + self.b2  # [n, B, 3]: a map per column
        return torch.cat([e.transpose(0, 1).flatten(1), x], dim=1)


class NTKLinear(nn.Module):
    """``x @ W / sqrt(fan_in) + b`` with W from N(0, 1): Adam's steps then move every layer's
    output alike whatever its width, so one learning rate fits all."""

    def __init__(self, n_in: int, n_out: int, gen: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out, generator=gen))
        self.bias = nn.Parameter(torch.zeros(n_out))
        self.gain = 1 / math.sqrt(n_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weight) * self.gain + self.bias

    @torch.no_grad()
    def init_from(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Fit the initialization to sample rows ``x`` of this layer's input: each unit's
        pre-activation gets unit spread, and its bias puts the unit's zero at a random
        convex mix of five rows (the "he+5" start), so no unit begins dead or saturated.
        Returns the pre-activations."""
        z = (x @ self.weight) * self.gain
        std = z.std(dim=0, correction=0)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        self.weight.div_(std)
        z = z / std
        n, units = z.shape
        picks = torch.randint(0, n, (units, 5), generator=gen)
        mix = -torch.log(torch.rand(units, 5, generator=gen).clamp_min(1e-12))  # Exp(1)
        mix = mix / mix.sum(dim=1, keepdim=True)
        self.bias.copy_(-(z[picks, torch.arange(units)[:, None]] * mix).sum(dim=1))
        return z + self.bias


class ParametricActivation(nn.Module):
    """``x + α·(f(x) − x)`` with a learned α per unit, starting at 1 (plain f)."""

    def __init__(self, width: int, f: Any) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(width))
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.f(x) - x) * self.alpha


class RealMLP(nn.Module):
    """The network on the recipe's ``input`` matrix. ``x_init`` are the training rows (all
    of them: the robust scale is fitted on them; a sample initializes the layers)."""

    def __init__(self, x_init: np.ndarray, numeric: Sequence[int], n_out: int,
                 hidden: Sequence[int], dropout: float, activation: str, periodic: bool,
                 smooth_clip: bool, y_scale: tuple[float, float] = (0.0, 1.0),
                 y_range: tuple[float, float] | None = None, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        n_features = x_init.shape[1]
        center, factor = robust_scale(x_init)
        self.register_buffer("center", torch.from_numpy(center))
        self.register_buffer("factor", torch.from_numpy(factor))
        self.smooth_clip = smooth_clip
        numeric = sorted(set(numeric)) if periodic else []
        embedded = set(numeric)
        others = [j for j in range(n_features) if j not in embedded]
        self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.long))
        self.register_buffer("others", torch.tensor(others, dtype=torch.long))
        self.embed = PeriodicEmbedding(len(numeric), gen) if numeric else None
        width = (self.embed.width if self.embed else 0) + len(others)
        self.scale = nn.Parameter(torch.ones(width))
        self.layers = nn.ModuleList()
        self.acts = nn.ModuleList()
        for h in hidden:
            self.layers.append(NTKLinear(width, h, gen))
            self.acts.append(ParametricActivation(h, ACTIVATIONS[activation]))
            width = h
        self.head = NTKLinear(width, n_out, gen)
        self.dropout_max = dropout
        self.dropout = dropout
        self.classify = n_out > 1
        self.register_buffer("y_mean", torch.tensor(float(y_scale[0])))
        self.register_buffer("y_scale", torch.tensor(float(y_scale[1])))
        lo, hi = y_range if y_range is not None else (-math.inf, math.inf)
        self.register_buffer("y_low", torch.tensor(float(lo)))
        self.register_buffer("y_high", torch.tensor(float(hi)))
        self.clip_output = y_range is not None
        rows = torch.from_numpy(x_init)
        if len(rows) > INIT_ROWS:
            rows = rows[torch.randperm(len(rows), generator=gen)[:INIT_ROWS]]
        self._init_from(rows, gen)

    @torch.no_grad()
    def _init_from(self, x: torch.Tensor, gen: torch.Generator) -> None:
        h = self.features(x)
        for layer, act in zip(self.layers, self.acts, strict=True):
            h = act(layer.init_from(h, gen))
        self.head.init_from(h, gen)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Robust-scaled, clipped and embedded inputs, times the learned scale."""
        x = (x - self.center) * self.factor
        if self.smooth_clip:
            x = x / torch.sqrt(1 + (x / 3) ** 2)
        if self.embed is not None:
            parts = [self.embed(x.index_select(1, self.numeric))]
            if len(self.others):
                parts.append(x.index_select(1, self.others))
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return x * self.scale

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        for layer, act in zip(self.layers, self.acts, strict=True):
            h = act(layer(h))
            if self.training and self.dropout > 0:
                h = F.dropout(h, self.dropout, training=True)
        out = self.head(h)
        if self.clip_output and not self.training:
            out = torch.minimum(torch.maximum(out, self.y_low), self.y_high)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.raw(x)
        if self.classify:
            return torch.softmax(out, dim=1)
        return out * self.y_scale + self.y_mean

    def set_progress(self, t: float) -> None:
        """Dropout stays flat for the first half of training, then fades to none."""
        self.dropout = self.dropout_max * (1.0 if t < 0.5 else
                                           0.5 * (1 + math.cos(math.pi * (2 * t - 1))))

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's groups: the input scale learns fast, biases, activations and
        embeddings slowly; biases are not decayed."""
        weights = [m.weight for m in [*self.layers, self.head]]
        biases = [m.bias for m in [*self.layers, self.head]]
        groups = [
            {"params": [self.scale], "lr_factor": LR_SCALE},
            {"params": weights},
            {"params": biases, "lr_factor": LR_BIAS, "wd_factor": 0.0},
            {"params": [a.alpha for a in self.acts], "lr_factor": LR_ACT},
        ]
        if self.embed is not None:
            groups.append({"params": list(self.embed.parameters()), "lr_factor": LR_PLR})
        groups = [g for g in groups if g["params"]]
        for g in groups:
            g.update(betas=BETAS, wd_schedule="flat_cos")
        return groups
