"""The image step: any picture → a fixed-size RGB tensor, normalized per channel.

An image value is the picture's bytes, base64 text (a ``data:`` URL too, or wrapped as
``{"b64": "..."}``), or, where the caller allows it (training, ``studio predict``, never
the server), a local file path.
Pillow's decompression-bomb guard stays on. Channel means and spreads are fitted on a
sample of the training split and kept in the recipe.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SIZES = (32, 48, 64, 96, 128, 224)
DEFAULT_SIZE = 64
FIT_SAMPLE = 1000
DECODE_THREADS = 8
MAX_IMAGE_BYTES = 50 << 20
# Only these decoders ever see a byte: Pillow's others include EPS, which runs Ghostscript.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
MAX_PIXELS = 40_000_000  # one picture as decoded (after a JPEG's draft), width × height


def pixel_limit() -> int:
    """The most pixels one picture may decode to: the import skips bigger ones, so that
    whatever it keeps can be trained on."""
    from PIL import Image

    return min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)


def over_limit(width: int, height: int) -> str:
    """Why a picture decoding to ``width`` × ``height`` is refused; empty when it is not."""
    limit = pixel_limit()
    if width * height <= limit:
        return ""
    return f"{width}×{height} is over the limit of {limit / 1e6:g} million pixels"


def draft_as_training(img: Any) -> None:
    """Let a JPEG decode at a fraction of its size, as training at the largest picture size
    does: the pixels it then holds are the ones the limit counts."""
    img.draft("RGB", (max(SIZES), max(SIZES)))


class PixelBudget:
    """Pixels a caller may still have decoded: a request cannot buy minutes of CPU with a
    body of small files that each unpack to a huge picture."""

    def __init__(self, total: int) -> None:
        self.left = total

    def spend(self, pixels: int) -> None:
        if pixels > self.left:
            raise InputError("the pictures of this request hold too many pixels together: "
                             "send fewer or smaller ones")
        self.left -= pixels


def decode(value: Any, size: int, allow_paths: bool,
           budget: PixelBudget | None = None) -> np.ndarray:
    """One picture as uint8 [size, size, 3]; an InputError says why it cannot be read."""
    from PIL import Image, ImageOps

    data = _bytes(value, allow_paths)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            img.draft("RGB", (size, size))  # a big JPEG decodes at a fraction of its size
            pixels = img.width * img.height  # what will really be decoded
            too_many = over_limit(img.width, img.height)
            if too_many:
                raise InputError(f"refused: {too_many} (a decompression bomb?)")
            if budget is not None:
                budget.spend(pixels)
            img = ImageOps.exif_transpose(img).convert("RGB")
            img = img.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError:
        raise InputError("refused: too many pixels (a decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        raise InputError("not a readable image: not a PNG, JPEG, WEBP, GIF, BMP or TIFF "
                         "file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable image ({str(exc).splitlines()[0][:80]})") from None


_SPACE = re.compile(rb"\s+")


def is_b64(value: Any) -> bool:
    """A picture as ``{"b64": "..."}``, the KServe V1 and TF Serving way of sending bytes."""
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("b64"), str)


def _bytes(value: Any, allow_paths: bool) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if is_b64(value):
        value, allow_paths = value["b64"], False  # said to be base64: never a file's name
    if isinstance(value, Path) and allow_paths:
        return _read(value)
    if not isinstance(value, str) or not value:
        raise InputError("expected an image: base64 text of its file")
    if allow_paths and len(value) < 4096 and Path(value).is_file():
        return _read(Path(value))
    text = value.partition(",")[2] if value[:5].lower() == "data:" else value
    if not text:
        raise InputError("the data: URL holds no image after its comma")
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4096:
        raise InputError(f"image is over {MAX_IMAGE_BYTES >> 20} MiB")
    # Line-wrapped (MIME, the base64 tool) and URL-safe base64 are both common.
    raw = _SPACE.sub(b"", text.encode("ascii", "replace")).replace(b"-", b"+").replace(b"_", b"/")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        if allow_paths:
            raise InputError(f"{value[:200]!r} is neither an image file nor base64 text of "
                             "one") from None
        raise InputError("expected an image as base64 text (file paths are not read "
                         "here)") from None


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise InputError(f"{path.name} is over {MAX_IMAGE_BYTES >> 20} MiB")
    return path.read_bytes()


def decode_many(
    feature: Mapping[str, Any], values: Sequence[Any], allow_paths: bool,
    progress: Callable[[int, int], None] | None = None, budget: PixelBudget | None = None,
    out: np.ndarray | None = None, failed: list[tuple[int, str]] | None = None,
) -> np.ndarray:
    """uint8 [n, size, size, 3] (into ``out`` when given: a memory-mapped file, say). Many
    pictures decode on a few threads (Pillow lets go of the GIL while it decodes); a
    budgeted request decodes in order on its own thread.

    A picture that cannot be read stops the whole call, unless ``failed`` is given (and no
    budget: a request's pictures are all or nothing): then its row is left black,
    ``(row, why)`` is added to ``failed`` (in row order) and the rest decode."""
    size = int(feature["size"])
    if out is None:
        out = np.empty((len(values), size, size, 3), dtype=np.uint8)
    misses: list[tuple[int, str]] = []

    def one(i: int) -> None:
        try:
            out[i] = decode(values[i], size, allow_paths, budget)
        except InputError as exc:
            if failed is None or budget is not None:
                raise InputError(f"row {i}, column {feature['name']!r}: {exc}") from None
            out[i] = 0
            misses.append((i, str(exc)))  # list.append is atomic: safe from the pool

    workers = min(DECODE_THREADS, os.cpu_count() or 1)
    if budget is not None or workers < 2 or len(values) < 64:
        for i in range(len(values)):
            one(i)
            if progress is not None and ((i + 1) % 256 == 0 or i + 1 == len(values)):
                progress(i + 1, len(values))  # what is done, up to the last picture
    else:
        with ThreadPoolExecutor(workers) as pool:
            # A batch at a time: few pending tasks, and a bad row stops the rest soon.
            for start in range(0, len(values), 256):
                end = min(start + 256, len(values))
                list(pool.map(one, range(start, end)))
                if progress is not None:
                    progress(end, len(values))
    if failed is not None:
        failed.extend(sorted(misses))
    return out


def which(value: Any) -> str:
    """A picture's value as a person can find it: a file's name, else what it is."""
    if isinstance(value, Path) or (
            isinstance(value, str) and 0 < len(value) < 4096 and not value.startswith("data:")
            and (value.lower().endswith(IMAGE_SUFFIXES) or Path(value).exists())):
        return f"file {Path(value).name}"
    return "a picture given as bytes" if isinstance(value, bytes) else "a picture"


def fit_image(name: str, values: Sequence[Any], choice: Mapping[str, Any],
              seed: int = 0) -> dict[str, Any]:
    """Size and per-channel mean and spread over (a sample of) the training images, summed a
    batch at a time: memory stays at one batch of small uint8 pictures."""
    size = int(choice.get("size", DEFAULT_SIZE))
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(values), size=min(FIT_SAMPLE, len(values)), replace=False))
    total, squares, count = np.zeros(3), np.zeros(3), 0
    feature = {"name": name, "size": size}
    unreadable: list[tuple[int, str]] = []
    for start in range(0, len(pick), 64):
        failed: list[tuple[int, str]] = []
        batch = decode_many(feature, [values[i] for i in pick[start:start + 64]], True,
                            failed=failed)
        # a picture that cannot be read is left out here; training skips and lists it
        unreadable += [(pick[start + i], why) for i, why in failed]
        batch = np.delete(batch, [i for i, _ in failed], axis=0)
        x = batch.reshape(-1, 3).astype(np.float64) / 255.0
        total += x.sum(axis=0)
        squares += (x * x).sum(axis=0)
        count += len(x)
    if count == 0 and unreadable:
        row, why = unreadable[0]
        raise InputError(f"none of the {len(pick):,} pictures sampled from column {name!r} "
                         f"can be read ({which(values[row])}: {why})")
    mean = total / max(count, 1)
    std = np.maximum(np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0)), 1e-3)
    return {"name": name, "kind": "image", "size": size,
            "mean": [round(float(m), 6) for m in mean], "std": [round(float(s), 6) for s in std]}


def normalize(feature: Mapping[str, Any], pixels: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, 3] → float32 [n, 3, h, w] with the fitted channel statistics."""
    mean = np.asarray(feature["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(feature["std"], dtype=np.float32).reshape(1, 3, 1, 1)
    x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return (x - mean) / std
