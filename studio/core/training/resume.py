"""The torch loop's state as a checkpoint, and back (:mod:`studio.core.checkpoints` keeps the
folders).

What an uninterrupted run would carry from one epoch to the next is saved: the weights, the
optimizer's moments, the shuffling generator and torch's global generator (dropout), and the
loop's counters (the best epoch so far, its weights and score, the epochs since it, the
history). A resumed run then draws the same batches and the same dropout masks as the run
that was not interrupted, and ends where it would have.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from studio.core import checkpoints
from studio.core.errors import InputError

FORMAT = 1


def _tensors(state: dict[str, torch.Tensor]) -> bytes:
    return save_safetensors({k: v.detach().cpu().contiguous() for k, v in state.items()})


def _to_cpu(value: Any) -> Any:
    """A copy with every tensor on the CPU (an optimizer's state: dicts and lists of them)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return copy.deepcopy(value)


class Captured:
    """One epoch's end, copied to the CPU (the GPU's memory is the model's): kept until it is
    due to be written, so a Stop between writes still leaves the last whole epoch."""

    def __init__(self, epoch: int, family: str, model: torch.nn.Module,
                 opt: torch.optim.Optimizer, gen: torch.Generator, loop: dict[str, Any],
                 best_state: dict[str, torch.Tensor] | None, scaler: Any = None) -> None:
        self.epoch, self.family = epoch, family
        self.weights = _to_cpu(model.state_dict())
        self.best = best_state  # the loop replaces, never changes, its best weights
        self.state: dict[str, Any] = {
            "format": FORMAT, "optimizer": _to_cpu(opt.state_dict()),
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "loop": loop}
        if scaler is not None:  # fp16: the loss scale it has found
            self.state["scaler"] = _to_cpu(scaler.state_dict())
        if torch.cuda.is_available():
            self.state["cuda_rng"] = torch.cuda.get_rng_state_all()

    def write(self, folder: Path) -> Path:
        buf = io.BytesIO()
        torch.save(self.state, buf)
        files = {"weights.safetensors": _tensors(self.weights), "state.pt": buf.getvalue()}
        if self.best is not None:
            files["best.safetensors"] = _tensors(self.best)
        return checkpoints.write(folder, self.epoch, files, {
            "family": self.family, "epoch": self.epoch, "format": FORMAT})


def load(folder: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
         gen: torch.Generator, scaler: Any = None
         ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Put the checkpoint's state into ``model``, ``opt`` and ``gen``; the loop's counters,
    and the best epoch's weights (this epoch's when no others were saved)."""
    device = next(model.parameters()).device
    try:
        # weights_only: tensors and plain values only, never an object's code
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
        weights = load_safetensors((folder / "weights.safetensors").read_bytes())
        best_file = folder / "best.safetensors"
        best = load_safetensors(best_file.read_bytes()) if best_file.is_file() else None
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"the checkpoint {folder.name} cannot be read ({exc}); "
                         "start a new run instead") from exc
    if state.get("format") != FORMAT:
        raise InputError(f"the checkpoint {folder.name} is of another format")
    try:
        model.load_state_dict(weights)
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"the checkpoint {folder.name} does not fit this model (were its "
                         f"parameters changed?): {exc}") from exc
    gen.set_state(state["generator"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        # saved on a machine with more (or other) GPUs: the ones here take theirs in order
        for i, rng in enumerate(state["cuda_rng"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(rng, i)
    chosen = best if best is not None else weights
    return dict(state["loop"]), {k: v.to(device) for k, v in chosen.items()}
