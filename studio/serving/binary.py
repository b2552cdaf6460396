"""The Open Inference Protocol's binary tensor data extension (what tritonclient sends by
default): a request body is a JSON header followed by the raw bytes of some inputs, in the
order the inputs are listed; a response is a JSON header followed by the raw bytes of the
outputs asked for as binary. Also the BYTES datatype (text), in JSON and in binary.

Every length is checked before a tensor is built from the bytes; a bad one is an
``InputError`` (HTTP 400) naming what is wrong. The JSON header itself is read without a copy
of the body, and each binary tensor is copied once, out of the body, so the body can go and
the tensor is aligned, writable and native-endian before it can be batched with others.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from studio.core.errors import InputError
from studio.core.printable import brief

HEADER = "inference-header-content-length"
EXTENSION = "binary_tensor_data"
MAX_DIMS = 64  # NumPy's own limit: a deeper shape cannot be reshaped to
MAX_STRINGS = 1_000_000  # BYTES elements per request: each costs a Python object to decode
# How each V2 datatype lies on the wire: little-endian, row-major, no padding.
WIRE: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("|b1"), "UINT8": np.dtype("|u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("|i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_V2_OF = {d.newbyteorder("="): name for name, d in WIRE.items()}
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Encoded:
    """A binary response: the JSON header, then the output bytes that follow it."""

    head: bytes
    tail: bytes


# -- requests ------------------------------------------------------------------------------



def split_body(body: bytes | bytearray, header_length: str | None) -> tuple[Any, memoryview | None]:
    """The parsed JSON header and the binary part after it (None: the body is JSON only).
    ``header_length``: the request's Inference-Header-Content-Length header, if any."""
    if header_length is None:
        return _json(body, "request body"), None
    value = header_length.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise InputError("Inference-Header-Content-Length must be the JSON header's length in "
                         f"bytes, a whole number; got {header_length[:40]!r}")
    length = int(value)
    if length == 0:
        raise InputError("raw binary requests (Inference-Header-Content-Length: 0) are not "
                         "supported: send the JSON inference header first")
    if length > len(body):
        raise InputError(f"Inference-Header-Content-Length is {length} bytes, more than the "
                         f"whole body's {len(body)}")
    view = memoryview(body)
    return _json(view[:length], "JSON inference header"), view[length:]


def _json(data: bytes | bytearray | memoryview, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}") from None


def binary_size(tensor: Mapping[str, Any]) -> int | None:
    """The input's ``parameters.binary_data_size``: its byte count in the binary part, or
    None when its values are in JSON ``data``."""
    params = tensor.get("parameters")
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise InputError(f"input {brief(tensor.get('name'))}: 'parameters' must be an object")
    size = params.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InputError(f"input {brief(tensor.get('name'))}: binary_data_size must be a "
                         f"non-negative whole number of bytes, got {brief(size)}")
    return size


def check_sizes(inputs: Sequence[Any], tail: memoryview) -> None:
    """The binary inputs' sizes add up to exactly the bytes after the JSON header."""
    total = sum(binary_size(t) or 0 for t in inputs if isinstance(t, Mapping))
    if total > len(tail):
        raise InputError(f"the inputs' binary_data_size add up to {total} bytes but only "
                         f"{len(tail)} follow the JSON header")
    if total < len(tail):
        raise InputError(f"{len(tail) - total} bytes follow the inputs' binary data "
                         f"({total} bytes by their binary_data_size): the body is too long")


class Tail:
    """The binary part of a request, handed out input by input in the order they are listed."""

    def __init__(self, view: memoryview | None) -> None:
        self.view, self.offset = view, 0

    def take(self, name: str, size: int) -> memoryview:
        assert self.view is not None  # decode_binary checked
        if self.offset + size > len(self.view):
            raise InputError(f"input {name!r}: expecting {size} bytes of binary data, "
                             f"only {len(self.view) - self.offset} left in the body")
        part = self.view[self.offset:self.offset + size]
        self.offset += size
        return part


def tensor_header(tensor: Any, expected: Mapping[str, Any]) -> tuple[str, str, list[int]]:
    """An input's name (one the model takes), datatype and shape, checked."""
    if not isinstance(tensor, Mapping):
        raise InputError("each input must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    if not isinstance(name, str) or name not in expected:
        raise InputError(f"unknown input {brief(name)}; this model takes "
                         + ", ".join(repr(n) for n in expected))
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or (datatype not in WIRE and datatype != "BYTES"):
        raise InputError(f"input {name!r}: unsupported datatype {brief(datatype)}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise InputError(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if len(shape) > MAX_DIMS:
        raise InputError(f"input {name!r}: a shape of {len(shape)} dimensions is over the "
                         f"limit of {MAX_DIMS}")
    check_text_kind(name, datatype, expected[name])
    return name, datatype, shape


def check_text_kind(name: str, datatype: str, spec: Mapping[str, Any]) -> None:
    """Text goes to text inputs only, and text inputs take text only."""
    takes = spec.get("datatype")
    if (datatype == "BYTES") != (takes == "BYTES"):
        raise InputError(f"input {name!r} takes {takes}, not {datatype}")


def decode_binary(tensor: Any, expected: Mapping[str, Any], tail: Tail) -> np.ndarray:
    """An input sent as binary (it has ``parameters.binary_data_size``) as an array."""
    name, datatype, shape = tensor_header(tensor, expected)
    size = binary_size(tensor)
    assert size is not None
    if tail.view is None:
        raise InputError(f"input {name!r} has binary_data_size but the request has no "
                         "Inference-Header-Content-Length header saying where its JSON ends")
    if "data" in tensor:
        raise InputError(f"input {name!r} has both 'data' and binary_data_size: send one")
    count = math.prod(shape)  # Python ints: a hostile shape cannot wrap around
    if datatype == "BYTES":
        return _strings(name, tail.take(name, size), count).reshape(shape)
    wire = WIRE[datatype]
    if count * wire.itemsize != size:
        raise InputError(f"input {name!r}: shape {shape} of {datatype} needs "
                         f"{count * wire.itemsize} bytes, binary_data_size is {size}")
    raw = np.frombuffer(tail.take(name, size), dtype=wire, count=count)
    if datatype == "BOOL" and count and raw.view(np.uint8).max() > 1:
        raise InputError(f"input {name!r}: BOOL bytes must be 0 or 1")
    arr = raw.astype(wire.newbyteorder("="))  # the one copy: out of the body, native order
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"input {name!r}: values must be finite {datatype} numbers")
    return arr.reshape(shape)


def _strings(name: str, data: memoryview, count: int) -> np.ndarray:
    """Elements each a 4-byte little-endian length and that many bytes of UTF-8 text."""
    if count > MAX_STRINGS:
        raise InputError(f"input {name!r}: {count:,} BYTES elements is over the limit of "
                         f"{MAX_STRINGS:,}")
    if count * _LENGTH.size > len(data):
        raise InputError(f"input {name!r}: {count} BYTES elements need at least "
                         f"{count * _LENGTH.size} bytes, binary_data_size is {len(data)}")
    out = np.empty(count, dtype=object)
    at = 0
    for i in range(count):
        if at + _LENGTH.size > len(data):
            raise InputError(f"input {name!r}: BYTES element {i} has no 4-byte length "
                             f"(its data ends at byte {at})")
        (n,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + n > len(data):
            raise InputError(f"input {name!r}: BYTES element {i} says {n} bytes but only "
                             f"{len(data) - at} are left")
        out[i] = _text(name, i, data[at:at + n])
        at += n
    if at != len(data):
        raise InputError(f"input {name!r}: {len(data) - at} bytes after its {count} BYTES "
                         "elements")
    return out


def _text(name: str, i: int, raw: memoryview | bytes) -> str:
    # ONNX Runtime takes a bytes object as its repr ("b'..'"): strings are decoded here.
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise InputError(f"input {name!r}: BYTES element {i} is not UTF-8 text") from None


def decode_json_items(tensor: Any, expected: Mapping[str, Any]) -> np.ndarray:
    """A BYTES or BOOL input sent in JSON: ``data`` holds strings or true/false (flat, or
    nested by the shape)."""
    name, datatype, shape = tensor_header(tensor, expected)
    kind, what = (str, "strings") if datatype == "BYTES" else (bool, "true or false")
    if datatype not in ("BYTES", "BOOL"):
        raise InputError(f"input {name!r}: {datatype} data must be numbers")
    count = math.prod(shape)
    if kind is str and count > MAX_STRINGS:
        raise InputError(f"input {name!r}: {count:,} BYTES elements is over the limit of "
                         f"{MAX_STRINGS:,}")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InputError(f"input {name!r}: 'data' must be a list")
    flat: list[Any] = []
    todo = data[::-1]  # nested lists walked without recursion, in row-major order
    while todo and len(flat) <= count:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(reversed(item))
        elif isinstance(item, kind):
            flat.append(item)
        else:
            raise InputError(f"input {name!r}: {datatype} data must be {what}")
    if len(flat) != count:
        raise InputError(f"input {name!r}: shape {shape} needs {count} values, got "
                         f"{len(flat) if len(flat) < count else 'more'}")
    if kind is bool:
        return np.array(flat, dtype=np.bool_).reshape(shape)
    out = np.empty(count, dtype=object)
    out[:] = flat
    return out.reshape(shape)


# -- responses -----------------------------------------------------------------------------


def binary_flags(request: Mapping[str, Any], names: Sequence[str]) -> list[bool]:
    """Whether each output in ``names`` goes back binary: its own ``parameters.binary_data``
    when the request lists it, else the request's ``parameters.binary_data_output``
    (default false)."""
    params = request.get("parameters")
    if params is None and not request.get("outputs"):  # plain JSON, as before the extension
        return [False] * len(names)
    if params is not None and not isinstance(params, Mapping):
        raise InputError("'parameters' must be an object")
    default = _flag((params or {}).get("binary_data_output"), "binary_data_output", False)
    listed: dict[Any, bool] = {}
    for o in request.get("outputs") or []:
        p = o.get("parameters") if isinstance(o, Mapping) else None
        if p is not None and not isinstance(p, Mapping):
            raise InputError(f"output {o.get('name')!r}: 'parameters' must be an object")
        if p and "classification" in p:  # not silently ignored: the caller expects top-k
            raise InputError(f"output {o.get('name')!r}: the classification extension is "
                             "not supported; ask for the output itself")
        listed[o.get("name")] = _flag((p or {}).get("binary_data"), "binary_data", default)
    return [listed.get(n, default) for n in names]


def _flag(value: Any, what: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"parameters.{what} must be true or false, got {value!r}")
    return value


def datatype_of(arr: np.ndarray) -> str:
    """The V2 datatype of an output array (text: BYTES)."""
    if arr.dtype.kind in "OUS":
        return "BYTES"
    return _V2_OF.get(arr.dtype, "FP32")


def encode_output(name: str, arr: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes]:
    """An output's JSON entry, and its bytes when it goes back binary (else b"")."""
    datatype = datatype_of(arr)
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
    if datatype == "BYTES":
        values = arr.reshape(-1).tolist()
        if not binary:
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                             for v in values]
            return entry, b""
        raw = b"".join(_LENGTH.pack(len(t)) + t for t in map(_utf8, values))
    elif not binary:
        entry["data"] = arr.reshape(-1).tolist()
        return entry, b""
    else:
        raw = np.ascontiguousarray(arr, dtype=WIRE[datatype]).tobytes()
    entry["parameters"] = {"binary_data_size": len(raw)}
    return entry, raw


def _utf8(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def encode_response(head: dict[str, Any], outputs: Sequence[tuple[str, np.ndarray, bool]]
                    ) -> dict[str, Any] | Encoded:
    """``head`` (model name, version, id) with the outputs: a dict to send as JSON when no
    binary output has bytes, else the JSON header and the bytes after it."""
    entries, tails = [], []
    for name, arr, binary in outputs:
        entry, raw = encode_output(name, arr, binary)
        entries.append(entry)
        if raw:
            tails.append(raw)
    response = {**head, "outputs": entries}
    if not tails:
        return response
    return Encoded(orjson.dumps(response), b"".join(tails))


def response(encoded: Encoded) -> Response:
    """The HTTP answer: Inference-Header-Content-Length says where the JSON header ends."""
    return Response(encoded.head + encoded.tail, media_type="application/octet-stream",
                    headers={HEADER: str(len(encoded.head))})
