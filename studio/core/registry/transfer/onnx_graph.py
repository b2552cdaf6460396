"""An ONNX model made elsewhere: what it takes and gives, and proof that it loads and runs.

A tensor's weights may live in "external data" files named by a ``location`` the model's
author wrote. A hostile author writes ``/etc/passwd``, ``../../secret`` or a symlink there,
and whoever loads the model reads that file into a tensor (and may serve it back as an
output). So the model is parsed without its external data, every location is proven to be a
plain file inside the model's folder with the bytes it claims, and only then is it loaded by
the ONNX checker and ONNX Runtime.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from studio.core.errors import InputError
from studio.core.registry.transfer.tensors import TensorSpec

_PROTOBUF_LIMIT = 2 << 30
_DRIVE = re.compile(r"^[A-Za-z]:")
# TensorProto.DataType → V2 name; types V2 cannot name keep ONNX's name
ONNX_TO_V2 = {
    1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    8: "BYTES", 9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64", 16: "BF16",
}
# bytes per element of the types whose external data has a fixed size per element
_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8,
               14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 24: 1}


@dataclass(frozen=True)
class OnnxInfo:
    path: Path  # the .onnx file
    inputs: tuple[TensorSpec, ...]  # the graph's inputs that are not initializers
    outputs: tuple[TensorSpec, ...]
    opsets: dict[str, int]  # domain ("ai.onnx" for the default one) → version
    producer_name: str
    producer_version: str
    external_data: tuple[str, ...]  # files beside the model, relative to its folder, POSIX
    total_bytes: int  # the model file and its external data files


def read_onnx(path: Path) -> OnnxInfo:
    """Check and describe the ONNX model at ``path`` (a file, or a folder holding one .onnx
    and its external data). InputError names the file and the first fault found."""
    model_path = _model_file(path)
    name = model_path.name
    size = model_path.stat().st_size
    if size > _PROTOBUF_LIMIT:
        raise InputError(f"{name}: {size:,} bytes is over the 2 GiB an ONNX file can hold; "
                         "save its weights as external data")
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(str(model_path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InputError(f"{name}: not a readable ONNX model ({_first_line(exc)})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise InputError(f"{name}: not an ONNX model: it has no graph")
    folder = model_path.parent
    external = {}
    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            rel, file_size = _check_external(name, folder, tensor)
            external[rel] = file_size
    _check_loads(model_path)
    initializers = {t.name for t in model.graph.initializer}
    initializers |= {t.values.name for t in model.graph.sparse_initializer}
    return OnnxInfo(
        path=model_path,
        inputs=tuple(_spec(v) for v in model.graph.input if v.name not in initializers),
        outputs=tuple(_spec(v) for v in model.graph.output),
        opsets={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        external_data=tuple(sorted(external)),
        total_bytes=size + sum(external.values()),
    )


def _model_file(path: Path) -> Path:
    if not path.is_dir():
        if not path.is_file():
            raise InputError(f"{path.name}: no such file")
        return path
    models = [p for p in path.iterdir() if p.suffix == ".onnx" and p.is_file()]
    if len(models) != 1:
        raise InputError(f"{path.name}: a model folder must hold exactly one .onnx file; it "
                         f"holds {len(models)}")
    return models[0]


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of the model: initializers, sparse ones, node attributes (a
    Constant's value), in subgraphs (If, Loop, Scan), functions and training graphs."""
    def of_graph(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            yield from of_node(node)

    def of_node(node: Any) -> Iterator[Any]:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sparse in [*([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []),
                           *attr.sparse_tensors]:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                yield from of_graph(attr.g)
            for g in attr.graphs:
                yield from of_graph(g)

    yield from of_graph(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from of_node(node)
    for info in model.training_info:
        yield from of_graph(info.initialization)
        yield from of_graph(info.algorithm)


def _check_external(name: str, folder: Path, tensor: Any) -> tuple[str, int]:
    """The checked location of one tensor's external data (relative, POSIX) and the size of
    the file it names; InputError when it could reach anything but its own bytes."""
    entries = {e.key: e.value for e in tensor.external_data}
    where = f"{name}: refused: tensor {tensor.name!r} keeps its data in"
    location = entries.get("location", "")
    if not location:
        raise InputError(f"{name}: refused: tensor {tensor.name!r} has external data without "
                         "a location")
    shown = repr(location[:200])
    if (location.startswith(("/", "\\")) or _DRIVE.match(location)
            or os.path.isabs(location)):
        raise InputError(f"{where} {shown}, an absolute path; external data must sit in the "
                         "model's folder")
    parts = [p for p in re.split(r"[/\\]", location) if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{where} {shown}, which climbs out of the model's folder with '..'")
    if "\x00" in location or not parts:
        raise InputError(f"{where} {shown}, which is not a file name")
    # a symlink or a hard link makes a name inside the folder read a file outside it
    current = folder
    for part in parts:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            raise InputError(f"{name}: tensor {tensor.name!r} keeps its data in {shown}, "
                             "which is missing from the model's folder") from None
        except OSError as exc:
            raise InputError(f"{where} {shown}, which cannot be read: "
                             f"{exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            raise InputError(f"{where} {shown}, which passes through a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{where} {shown}, which is not a regular file")
    if info.st_nlink > 1:
        raise InputError(f"{where} {shown}, a file with {info.st_nlink} hard links; copy "
                         "it so that it has only its own name")
    if not current.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"{where} {shown}, which lies outside the model's folder")
    offset = _count(where, shown, entries, "offset", 0)
    length = _count(where, shown, entries, "length", None)
    size = info.st_size
    end = offset + (length if length is not None else 0)
    if offset > size or end > size:
        raise InputError(f"{where} {shown} at bytes {offset:,}–{end:,}, past the end of "
                         f"that {size:,}-byte file")
    if any(d < 0 for d in tensor.dims):
        raise InputError(f"{name}: refused: tensor {tensor.name!r} has a negative dimension")
    item = _ITEM_BYTES.get(tensor.data_type)
    if item is not None:
        needed = math.prod(tensor.dims) * item
        held = length if length is not None else size - offset
        if (held != needed) if length is not None else (held < needed):
            raise InputError(f"{where} {shown}: {list(tensor.dims)} needs {needed:,} bytes "
                             f"but it names {held:,}")
    return PurePosixPath(*parts).as_posix(), size


def _count(where: str, shown: str, entries: dict[str, str], key: str,
           default: int | None) -> int | None:
    value = entries.get(key)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit():
        raise InputError(f"{where} {shown} with {key} {value[:40]!r}, not a byte count")
    return int(value)


def _check_loads(model_path: Path) -> None:
    """The ONNX checker on the file (so external data is read from where it sits), then an
    ONNX Runtime session on the CPU: the model must load where it will be served."""
    import onnx
    import onnxruntime as ort

    name = model_path.name
    try:
        onnx.checker.check_model(str(model_path), full_check=True)
    except Exception as exc:  # ValidationError, InferenceError, and C++ errors as others
        raise InputError(f"{name}: not a valid ONNX model: {_first_line(exc)}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings about a foreign graph are not ours to print
    try:
        ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types, all from one pybind module
        raise InputError(f"{name}: ONNX Runtime cannot run it: {_first_line(exc)}") from None


def _spec(value: Any) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(value.name, _type_name(value.type), ())
    tensor = value.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSpec(value.name, _elem_name(tensor.elem_type), dims)


def _elem_name(elem_type: int) -> str:
    import onnx

    if elem_type in ONNX_TO_V2:
        return ONNX_TO_V2[elem_type]
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"UNKNOWN({elem_type})"


def _type_name(type_proto: Any) -> str:
    """A value that is not a tensor, written as ONNX Runtime writes it: seq(map(INT64,FP32))."""
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        return _elem_name(type_proto.tensor_type.elem_type)
    if kind == "sequence_type":
        return f"seq({_type_name(type_proto.sequence_type.elem_type)})"
    if kind == "map_type":
        m = type_proto.map_type
        return f"map({_elem_name(m.key_type)},{_type_name(m.value_type)})"
    if kind == "optional_type":
        return f"optional({_type_name(type_proto.optional_type.elem_type)})"
    if kind == "sparse_tensor_type":
        return f"sparse({_elem_name(type_proto.sparse_tensor_type.elem_type)})"
    return "unknown"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
