"""Model builders. ``raw`` is what the loss sees; ``forward`` is what serving returns."""

from __future__ import annotations

import torch
from torch import nn


class TabularMLP(nn.Module):
    def __init__(
        self, n_in: int, n_out: int, hidden: list[int], dropout: float,
        y_scale: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.classify = n_out > 1
        self.register_buffer("y_mean", torch.tensor(y_scale[0]))
        self.register_buffer("y_scale", torch.tensor(y_scale[1]))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.classify:
            return torch.softmax(out, dim=1)
        return out * self.y_scale + self.y_mean


def build_mlp(
    n_in: int, n_out: int, hidden: list[int], dropout: float,
    y_scale: tuple[float, float] = (0.0, 1.0),
) -> TabularMLP:
    return TabularMLP(n_in, n_out, hidden, dropout, y_scale)
