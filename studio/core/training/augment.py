"""Picture augmentation for training: small random shifts, mirror images, light changes.

Applied to each training batch's normalized ``[n, 3, S, S]`` tensor on its device, with the
loop's seeded generator, so a run is repeatable; validation, test and serving never see it.
Torch ops only (no torchvision, which does not import beside the CPU build here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """What to vary in a training picture. ``shift`` is the most a picture moves, as a share
    of its side; ``jitter`` the most its brightness (a share of the 0–255 range) and its
    contrast (a share of itself) change."""

    shift: float = 0.0
    flip: bool = False
    jitter: float = 0.0

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.flip or self.jitter > 0


def shift(x: torch.Tensor, most: int, gen: torch.Generator) -> torch.Tensor:
    """Each picture moved by up to ``most`` pixels each way (pad by repeating the edge, then
    crop at a random place): the subject need not sit where the training pictures had it."""
    if most <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (most, most, most, most), mode="replicate")
    dy = torch.randint(0, 2 * most + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * most + 1, (n,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # n,1,h,1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # n,1,1,w
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Half of the pictures, at random, mirrored left to right."""
    mirror = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(mirror[:, None, None, None], x.flip(3), x)


def jitter(x: torch.Tensor, most: float, std: Sequence[float],
           gen: torch.Generator) -> torch.Tensor:
    """Brightness and contrast changed by up to ``most`` per picture. ``x`` is normalized
    per channel (``std``: the channels' spreads on the 0–1 scale), so a brightness step of
    ``b`` is ``b / std`` here; contrast scales each picture around its own mean."""
    if most <= 0:
        return x
    n = x.shape[0]
    spread = torch.tensor(list(std), dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    bright = ((torch.rand(n, generator=gen) * 2 - 1) * most).to(x.device, x.dtype)
    contrast = (1 + (torch.rand(n, generator=gen) * 2 - 1) * most).to(x.device, x.dtype)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * contrast.reshape(-1, 1, 1, 1) + mean + bright.reshape(-1, 1, 1, 1) / spread


def augmenter(plan: Augment, names: Sequence[str], feature: Mapping[str, Any]
              ) -> Callable[[list[torch.Tensor], torch.Generator], list[torch.Tensor]] | None:
    """The loop's ``augment(xs, generator)`` for a model whose inputs are ``names``: it
    changes the ``image`` tensor and passes the others through; None when nothing varies."""
    if not plan.active or "image" not in names:
        return None
    at = list(names).index("image")
    most = round(plan.shift * int(feature["size"]))
    std = [float(s) for s in feature["std"]]

    def augment(xs: list[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor]:
        x = xs[at]
        x = shift(x, most, gen)
        if plan.flip:
            x = flip(x, gen)
        x = jitter(x, plan.jitter, std, gen)
        return [*xs[:at], x, *xs[at + 1:]]

    return augment
