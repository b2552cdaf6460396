"""Run as a script by ``torch_weights``: open a PyTorch checkpoint as weights only, write its
tensors as safetensors, and print one JSON line saying what happened.

It imports nothing from ``studio`` (it runs under ``python -I`` with the package not on its
path) and runs in its own process so that a checkpoint that crashes or exhausts the unpickler
takes only this process down.

    python -I _torch_child.py SRC DEST   →   {"names": [...]} | {"refused": "global", ...}
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# the usual places a training script keeps the model's weights inside a bigger checkpoint
MODEL_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")


def main(src: str, dest: str) -> int:
    import pickle

    import torch

    try:
        # an open file, not a path: given a path, torch.load picks a reader by its extension
        # (".safetensors"), and the bytes alone decide here
        with open(src, "rb") as f:
            obj = torch.load(f, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            return _say({"refused": "global", "global": found.group(1)})
        operand = re.search(r"Unsupported (?:operand|class)[^\n]*", text)
        return _say({"refused": "pickle", "detail": operand.group(0) if operand else
                     _first_words(text)})
    except RuntimeError as exc:
        if "TorchScript" in str(exc):
            return _say({"refused": "torchscript"})
        return _say({"refused": "unreadable", "detail": _first_words(str(exc))})
    except Exception as exc:  # EOFError, zip errors, OSError: a damaged file
        return _say({"refused": "unreadable", "detail": f"{type(exc).__name__}: "
                     f"{_first_words(str(exc))}"})
    tensors: dict[str, Any] = {}
    try:
        _flatten(_model_part(obj, torch), "", tensors, torch)
    except _Clash as exc:
        return _say({"refused": "clash", "detail": str(exc)})
    if not tensors:
        return _say({"refused": "empty", "detail": type(obj).__name__})
    from safetensors.torch import save_file

    try:
        save_file(_unshared(tensors, torch), dest)
    except Exception as exc:  # a sparse, quantized or meta tensor safetensors cannot hold
        return _say({"refused": "unwritable", "detail": f"{type(exc).__name__}: "
                     f"{_first_words(str(exc))}"})
    return _say({"names": list(tensors)})


def _model_part(obj: Any, torch: Any) -> Any:
    """The model's weights: the one entry of a training checkpoint that holds them, so that
    the optimizer's moments and the epoch number stay behind."""
    if isinstance(obj, dict):
        for key in MODEL_KEYS:
            value = obj.get(key)
            if isinstance(value, dict) and any(isinstance(v, torch.Tensor | dict)
                                               for v in value.values()):
                return value
    return obj


class _Clash(Exception):
    """Two tensors flatten to one name."""


def _flatten(obj: Any, prefix: str, out: dict[str, Any], torch: Any) -> None:
    """Tensors of nested dicts under dotted names (``encoder.layer.0.weight``); other leaves
    (an epoch number, a learning rate, a list of strings) are not weights and are left out."""
    if isinstance(obj, torch.Tensor):
        name = prefix or "weight"
        if name in out:  # {"a.b": t} beside {"a": {"b": t}}
            raise _Clash(name)
        out[name] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, torch)


def _unshared(tensors: dict[str, Any], torch: Any) -> dict[str, Any]:
    """safetensors writes each tensor's own bytes and refuses tensors that share storage (tied
    weights, views of one buffer): those, and non-contiguous ones, are written from a copy.
    The others are written as they are, so a big checkpoint is not held twice in memory."""
    owners: dict[int, int] = {}
    for t in tensors.values():
        if t.device.type != "meta" and not t.is_sparse:
            key = t.untyped_storage().data_ptr()
            owners[key] = owners.get(key, 0) + 1
    out = {}
    for name, t in tensors.items():
        t = t.detach()
        shared = (t.device.type != "meta" and not t.is_sparse
                  and owners.get(t.untyped_storage().data_ptr(), 0) > 1)
        out[name] = t.clone().contiguous() if shared or not t.is_contiguous() else t
    return out


def _first_words(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _say(message: dict[str, Any]) -> int:
    print(json.dumps(message), flush=True)
    return 0 if "names" in message else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
