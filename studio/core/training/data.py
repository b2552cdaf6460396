"""The model's input tensors for training, built once and cut into batches.

Table features and token ids go to the device whole. Pictures are decoded once to uint8
(a quarter of float32's memory) and normalized a batch at a time by the recipe's own
:func:`~studio.core.datasets.pixels.normalize`, the same code serving runs.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from studio.core.datasets import pixels
from studio.core.datasets.recipe import model_inputs, text_tokens, transform
from studio.core.errors import InputError
from studio.core.events import Emit, Progress

IN_MEMORY_PIXEL_BYTES = 1 << 30
MAX_UNREADABLE_SHARE = 0.05  # more unreadable pictures than this is a damaged dataset


class ModelData:
    def __init__(self, recipe: Mapping[str, Any], frame: pd.DataFrame, device: Any,
                 emit: Emit, scratch: Path | None = None, skip_unreadable: bool = False
                 ) -> None:
        """``skip_unreadable``: a picture that cannot be decoded is left black and listed in
        ``unreadable`` for the caller to leave out (a few of them; more than
        ``MAX_UNREADABLE_SHARE`` is an error). Without it the first one is an error."""
        self.device = device
        self.names = [i["name"] for i in model_inputs(recipe)]
        self.on_device: dict[str, torch.Tensor] = {}
        if "input" in self.names:
            self.on_device["input"] = torch.from_numpy(transform(recipe, frame)).to(device)
        if "tokens" in self.names:
            # int32 halves what every row's ids hold through training (a 100,000-row set of
            # long text: 0.5 GB less); the exported graph still takes INT64
            ids = text_tokens(recipe, frame).astype(np.int32)
            self.on_device["tokens"] = torch.from_numpy(ids).to(device)
        self.image: Mapping[str, Any] | None = None
        self.unreadable: list[tuple[int, str]] = []
        self.pixels = np.zeros(0, dtype=np.uint8)
        if "image" in self.names:
            self.image = next(f for f in recipe["features"] if f["kind"] == "image")
            values = frame[self.image["name"]].tolist()

            def progress(i: int, n: int) -> None:
                emit(Progress("decode", i, n, f"decoding images {i:,}/{n:,}"))

            size = int(self.image["size"])
            shape = (len(values), size, size, 3)
            out = None
            if scratch is not None and math.prod(shape) > IN_MEMORY_PIXEL_BYTES:
                # Many big pictures: decoded onto disk (an unnamed file, gone with the
                # process), so training's memory does not grow with the dataset.
                need = math.prod(shape)
                free = shutil.disk_usage(scratch).free
                if free < need + (1 << 30):
                    raise InputError(f"decoding {len(values):,} pictures needs "
                                     f"{need / 2**30:.1f} GiB of scratch space in {scratch}; "
                                     f"{free / 2**30:.1f} GiB is free. Choose a smaller "
                                     "image size or free some space")
                self._file = tempfile.TemporaryFile(dir=scratch, prefix="pixels-")  # noqa: SIM115 - lives as long as this object
                if hasattr(os, "posix_fallocate"):  # real blocks now: no SIGBUS when full
                    os.posix_fallocate(self._file.fileno(), 0, need)
                else:
                    self._file.truncate(need)
                out = np.memmap(self._file, dtype=np.uint8, mode="r+", shape=shape)
            failed: list[tuple[int, str]] | None = [] if skip_unreadable else None
            self.pixels = pixels.decode_many(self.image, values, True, progress, out=out,
                                             failed=failed)
            self.unreadable = [(row, f"{pixels.which(values[row])}: {why}")
                               for row, why in failed or []]
            if len(self.unreadable) > max(1.0, MAX_UNREADABLE_SHARE * len(values)):
                n = len(self.unreadable)
                shown = "; ".join(f"row {row}, {why}" for row, why in self.unreadable[:3])
                raise InputError(
                    f"{n:,} of {len(values):,} pictures cannot be read ({shown}"
                    f"{'; …' if n > 3 else ''}): too many to skip; the "
                    "dataset looks damaged (`studio verify` checks it), import the folder "
                    "again")

    def batch(self, rows: np.ndarray) -> list[torch.Tensor]:
        """The model's inputs, in its order, for the given row indices."""
        index = torch.from_numpy(rows).to(self.device)
        out = []
        for name in self.names:
            if name == "image":
                assert self.image is not None
                x = torch.from_numpy(pixels.normalize(self.image, self.pixels[rows]))
                if getattr(self.device, "type", self.device) == "cuda":
                    # page-locked, so the copy runs beside the GPU's work on the last batch
                    x = x.pin_memory()
                out.append(x.to(self.device, non_blocking=True))
            else:
                out.append(self.on_device[name][index])
        return out
