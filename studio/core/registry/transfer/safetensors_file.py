"""A safetensors file made elsewhere, checked before anything is allocated from it.

The layout is 8 bytes (little-endian header length), a JSON header naming each tensor's
dtype, shape and ``data_offsets`` into the data area that follows, then that data area.
Every number in the header is checked here, with Python integers that cannot overflow,
before the safetensors library (or anything else) sizes a buffer from it.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core.errors import InputError
from studio.core.registry.transfer.tensors import TensorSpec

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit

# bits per element, the library's dtype names (F4 and F6 are packed below a byte)
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}
# V2 has no name for the 8-bit and smaller floats nor complex: those keep the library's name
V2_NAMES = {
    "BOOL": "BOOL", "U8": "UINT8", "I8": "INT8", "I16": "INT16", "U16": "UINT16",
    "F16": "FP16", "BF16": "BF16", "I32": "INT32", "U32": "UINT32", "F32": "FP32",
    "I64": "INT64", "U64": "UINT64", "F64": "FP64",
}


@dataclass(frozen=True)
class StoredTensor:
    """One tensor of a safetensors file: its library dtype and where its bytes lie in the
    data area (``begin`` inclusive, ``end`` exclusive, counted from the area's start)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.name, V2_NAMES.get(self.dtype, self.dtype), self.shape)


def read_header(path: Path) -> dict[str, StoredTensor]:
    """The tensors of a safetensors file, in the header's order, once every one is proven to
    lie inside the file; raises InputError naming the file and the first fault."""
    return _read(path)[0]


def read_metadata(path: Path) -> dict[str, str]:
    """The header's ``__metadata__`` (str → str), checked as ``read_header`` checks."""
    return _read(path)[1]


def load_numpy(path: Path) -> dict[str, Any]:
    """The tensors as numpy arrays, read only after the header passed ``read_header``."""
    tensors = read_header(path)
    from safetensors.numpy import load_file

    unsupported = sorted({t.dtype for t in tensors.values()} - _NUMPY_DTYPES)
    if unsupported:
        raise InputError(f"{path.name}: numpy has no type for {', '.join(unsupported)}")
    try:
        return load_file(str(path))
    except Exception as exc:  # the library's SafetensorError and OSErrors alike
        raise InputError(f"{path.name}: unreadable safetensors file: {_first_line(exc)}") \
            from None


_NUMPY_DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "F16", "I32", "U32", "F32", "I64", "U64",
                 "F64", "C64"}


def _read(path: Path) -> tuple[dict[str, StoredTensor], dict[str, str]]:
    name = path.name
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise InputError(f"{name}: too short to be a safetensors file ({size} bytes)")
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER_BYTES:
                raise InputError(f"{name}: refused: its header claims {n:,} bytes, over the "
                                 f"{MAX_HEADER_BYTES:,} a safetensors header may have")
            if n > size - 8:
                raise InputError(f"{name}: refused: its header claims {n:,} bytes but the file "
                                 f"holds only {size - 8:,} after the length")
            raw = f.read(n)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) != n:
        raise InputError(f"{name}: the file changed while it was read")
    header = _parse_json(name, raw)
    data_size = size - 8 - n
    metadata = _metadata(name, header.pop("__metadata__", None))
    tensors = {key: _tensor(name, key, value) for key, value in header.items()}
    _check_layout(name, list(tensors.values()), data_size)
    return tensors, metadata


def _parse_json(name: str, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: refused: its header is not UTF-8 text") from None

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:  # json keeps the last, another reader may keep the first
                raise InputError(f"{name}: refused: its header names {key!r} twice")
            out[key] = value
        return out

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates,
                            parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge ints, deep nesting
        raise InputError(f"{name}: refused: its header is not valid JSON "
                         f"({_first_line(exc)[:120]})") from None
    if not isinstance(header, dict):
        raise InputError(f"{name}: refused: its header is JSON but not an object")
    return header


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _metadata(name: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InputError(f"{name}: refused: its __metadata__ must map text to text")
    return value


MAX_AXES = 32
MAX_AXIS = 1 << 48  # more elements than any file here can hold


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor(name: str, key: str, value: Any) -> StoredTensor:
    where = f"{name}: refused: tensor {key!r}"
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise InputError(f"{where} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if dtype not in DTYPE_BITS:
        raise InputError(f"{where} has an unknown dtype {str(dtype)[:40]!r}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise InputError(f"{where} has a shape that is not a list of non-negative integers")
    # bounded before any product: a header of huge axes must not cost time or overflow
    if len(shape) > MAX_AXES or any(d > MAX_AXIS for d in shape):
        raise InputError(f"{where} has an impossible shape ({len(shape)} axes; at most "
                         f"{MAX_AXES} of at most {MAX_AXIS:,} each)")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) and o >= 0 for o in offsets) or offsets[0] > offsets[1]):
        raise InputError(f"{where} has data_offsets that are not [begin, end] with "
                         "0 ≤ begin ≤ end")
    begin, end = offsets
    bits = 0 if 0 in shape else DTYPE_BITS[dtype]
    for d in shape:  # stops as soon as it is larger than the file could hold
        bits *= d
        if bits > 8 * MAX_AXIS:
            break
    if bits % 8 or bits // 8 != end - begin:
        needs = f"{bits / 8:,g} bytes" if bits <= 8 * MAX_AXIS else "more bytes than a file holds"
        raise InputError(f"{where}: {dtype} {shape} needs {needs} but its data_offsets hold "
                         f"{end - begin:,}")
    return StoredTensor(key, dtype, tuple(shape), begin, end)


def _check_layout(name: str, tensors: list[StoredTensor], data_size: int) -> None:
    """The tensors tile the data area exactly: in offset order each begins where the one
    before ends, and the last ends at the end of the file."""
    at = 0
    previous = None
    for t in sorted(tensors, key=lambda t: (t.begin, t.end)):
        if t.end > data_size:
            raise InputError(f"{name}: refused: tensor {t.name!r} ends at byte {t.end:,} of "
                             f"a data area of {data_size:,} bytes")
        if t.begin < at:
            raise InputError(f"{name}: refused: tensors {previous!r} and {t.name!r} overlap")
        if t.begin > at:
            raise InputError(f"{name}: refused: bytes {at:,}–{t.begin:,} of its data belong "
                             "to no tensor")
        at, previous = t.end, t.name
    if at != data_size:
        raise InputError(f"{name}: refused: its last {data_size - at:,} bytes belong to no "
                         "tensor")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
