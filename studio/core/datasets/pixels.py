"""The image step: any picture → a fixed-size RGB tensor, normalized per channel.

An image value is the picture's bytes, base64 text (a ``data:`` URL too), or, where the
caller allows it (training, ``studio predict``, never the server), a local file path.
Pillow's decompression-bomb guard stays on. Channel means and spreads are fitted on a
sample of the training split and kept in the recipe.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import InputError

SIZES = (32, 48, 64, 96, 128, 224)
DEFAULT_SIZE = 64
FIT_SAMPLE = 2000
MAX_IMAGE_BYTES = 50 << 20


def decode(value: Any, size: int, allow_paths: bool) -> np.ndarray:
    """One picture as uint8 [size, size, 3]; an InputError says why it cannot be read."""
    from PIL import Image, ImageOps

    data = _bytes(value, allow_paths)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img = ImageOps.exif_transpose(img).convert("RGB")
                img = img.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError("refused: too many pixels (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable image ({str(exc).splitlines()[0][:80]})") from None


def _bytes(value: Any, allow_paths: bool) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Path) and allow_paths:
        return _read(value)
    if not isinstance(value, str) or not value:
        raise InputError("expected an image: base64 text of its bytes")
    if allow_paths and len(value) < 4096 and Path(value).is_file():
        return _read(Path(value))
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InputError(f"image is over {MAX_IMAGE_BYTES >> 20} MiB")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        hint = "" if allow_paths else " (file paths are not read here)"
        raise InputError(f"expected an image as base64 text{hint}") from None


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise InputError(f"{path.name} is over {MAX_IMAGE_BYTES >> 20} MiB")
    return path.read_bytes()


def decode_many(
    feature: Mapping[str, Any], values: Sequence[Any], allow_paths: bool,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    size = int(feature["size"])
    out = np.empty((len(values), size, size, 3), dtype=np.uint8)
    for i, value in enumerate(values):
        try:
            out[i] = decode(value, size, allow_paths)
        except InputError as exc:
            raise InputError(f"row {i}, column {feature['name']!r}: {exc}") from None
        if progress is not None and i % 256 == 0:
            progress(i, len(values))
    return out


def fit_image(name: str, values: Sequence[Any], choice: Mapping[str, Any],
              seed: int = 0) -> dict[str, Any]:
    """Size and per-channel mean and spread over (a sample of) the training images."""
    size = int(choice.get("size", DEFAULT_SIZE))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(values), size=min(FIT_SAMPLE, len(values)), replace=False)
    sample = decode_many({"name": name, "size": size}, [values[i] for i in sorted(pick)],
                         allow_paths=True).astype(np.float64) / 255.0
    mean = sample.mean(axis=(0, 1, 2))
    std = np.maximum(sample.std(axis=(0, 1, 2)), 1e-3)
    return {"name": name, "kind": "image", "size": size,
            "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std]}


def normalize(feature: Mapping[str, Any], pixels: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, 3] → float32 [n, 3, h, w] with the fitted channel statistics."""
    mean = np.asarray(feature["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(feature["std"], dtype=np.float32).reshape(1, 3, 1, 1)
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return (x - mean) / std
