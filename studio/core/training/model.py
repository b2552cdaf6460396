"""Model builders. ``raw`` is what the loss sees; ``forward`` is what serving returns.

One network serves every modality: each input tensor the recipe produces (table features,
token ids, a picture) has a branch that turns it into a vector; the vectors are joined and
an MLP head maps them to classes or a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from studio.core.datasets.text import EMBEDDING_DIM


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


class ImageEncoder(nn.Module):
    """A small CNN: ``stages`` of ``convs`` conv blocks each, halving the picture between
    stages (max pooling) while the channels double from ``width`` (up to 8×), then global
    average pooling, so any square size works. The defaults are the first network's
    (three stages of one block from 32 channels), which saved versions were built with.
    ``channels``: each convolution's output channels, in order, instead of the doubling
    rule (a pruned encoder keeps its own, narrower widths)."""

    def __init__(self, width: int = 32, stages: int = 3, convs: int = 1,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        if channels is not None and len(channels) != stages * convs:
            raise ValueError(f"{stages} stages of {convs} convolutions need "
                             f"{stages * convs} channel counts, got {len(channels)}")
        layers: list[nn.Module] = []
        c_in = 3
        for stage in range(stages):
            for i in range(convs):
                c_out = (int(channels[stage * convs + i]) if channels is not None
                         else width * 2 ** min(stage, 3))
                layers += _conv_block(c_in, c_out)
                c_in = c_out
            if stage < stages - 1:
                layers.append(nn.MaxPool2d(2))
        self.width = c_in
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def image_stages(size: int) -> int:
    """Stages for pictures of ``size`` pixels a side: enough halvings to bring them to
    about 4×4 before the global pooling (each stage's 3×3 convolutions then see the whole
    picture), at least 3 and at most 6 (224 px ends at 7×7)."""
    return max(3, min(6, size.bit_length() - 2))


class TextEncoder(nn.Module):
    """Per text column, its token vectors pooled; the columns' vectors side by side, so a
    short title is not drowned by a long body.

    Pooling divides the sum by the square root of the number of tokens (padding, id 0, does
    not count): between a mean, where one telling word is diluted by a long message, and a
    sum, which grows without bound with the length. Vectors start near zero (fastText's
    choice): a word seen in two rows barely moves from where it started, and random start
    vectors of such words were noise that every prediction carried.
    """

    INIT_STD = 0.01

    def __init__(self, vocabulary_size: int, segments: Sequence[int],
                 dim: int = EMBEDDING_DIM, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary_size, dim, padding_idx=0)
        with torch.no_grad():
            self.embed.weight.normal_(0.0, self.INIT_STD)
            self.embed.weight[0] = 0.0
        self.bounds = [(sum(segments[:i]), sum(segments[:i + 1])) for i in range(len(segments))]
        self.width = dim * len(segments)
        self.dropout = nn.Dropout(dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids > 0).unsqueeze(-1).to(self.embed.weight.dtype)
        vectors = self.embed(ids) * mask
        pooled = [vectors[:, a:b].sum(dim=1) / mask[:, a:b].sum(dim=1).clamp(min=1.0).sqrt()
                  for a, b in self.bounds]
        return self.dropout(pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1))


class StudioNet(nn.Module):
    def __init__(
        self, inputs: Sequence[Mapping[str, Any]], n_out: int, hidden: list[int],
        dropout: float, y_scale: tuple[float, float] = (0.0, 1.0),
        image: Mapping[str, Any] | None = None, text_dim: int = EMBEDDING_DIM,
    ) -> None:
        super().__init__()
        self.names = [i["name"] for i in inputs]
        width = 0
        for spec in inputs:
            if spec["name"] == "input":
                width += int(spec["shape"][1])
            elif spec["name"] == "tokens":
                self.text = TextEncoder(int(spec["vocabulary_size"]),
                                        spec.get("segments", [int(spec["shape"][1])]),
                                        text_dim, dropout)
                width += self.text.width
            elif spec["name"] == "image":
                self.image = ImageEncoder(**(image or {}))
                width += self.image.width
            else:
                raise ValueError(f"unknown model input {spec['name']!r}")
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.classify = n_out > 1
        self.register_buffer("y_mean", torch.tensor(y_scale[0]))
        self.register_buffer("y_scale", torch.tensor(y_scale[1]))

    def raw(self, *xs: torch.Tensor) -> torch.Tensor:
        parts = []
        for name, x in zip(self.names, xs, strict=True):
            if name == "tokens":
                parts.append(self.text(x))
            elif name == "image":
                parts.append(self.image(x))
            else:
                parts.append(x)
        return self.net(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = self.raw(*xs)
        if self.classify:
            return torch.softmax(out, dim=1)
        return out * self.y_scale + self.y_mean


def build_model(
    inputs: Sequence[Mapping[str, Any]], n_out: int, hidden: list[int], dropout: float,
    y_scale: tuple[float, float] = (0.0, 1.0), image: Mapping[str, Any] | None = None,
    text_dim: int = EMBEDDING_DIM,
) -> StudioNet:
    """``image``: the picture branch's :class:`ImageEncoder` arguments (width, stages,
    convs, and channels when pruned); keep them beside the weights to build the same
    network again. ``text_dim``: width of a token's vector (a bag-of-words linear model
    gives each word one weight per output: ``text_dim`` = ``n_out``)."""
    return StudioNet(inputs, n_out, hidden, dropout, y_scale, image, text_dim)
