"""A model as a Triton / KServe model repository entry: ``root/name/config.pbtxt`` and
``root/name/<version>/model.onnx``, served by the onnxruntime backend.

With ``max_batch_size`` > 0 Triton adds the batch axis itself, so dims leave it out and every
tensor's first axis must be dynamic. Every version folder present is served (version policy
``all``): a later export of the same model adds a folder beside the earlier ones, and the one
config must describe them all, so tensors that differ are refused.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from studio.core.errors import InputError
from studio.core.registry.transfer import triton_schema
from studio.core.registry.transfer.tensors import TensorSpec

PLATFORM = "onnxruntime_onnx"
MODEL_FILE = "model.onnx"
# A folder name on every OS, a URL path segment for KServe, and never hidden or a temp name.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")

# V2 datatype → (Triton DataType, ONNX TensorProto element type)
DATATYPES = {
    "BOOL": ("TYPE_BOOL", "BOOL"), "UINT8": ("TYPE_UINT8", "UINT8"),
    "UINT16": ("TYPE_UINT16", "UINT16"), "UINT32": ("TYPE_UINT32", "UINT32"),
    "UINT64": ("TYPE_UINT64", "UINT64"), "INT8": ("TYPE_INT8", "INT8"),
    "INT16": ("TYPE_INT16", "INT16"), "INT32": ("TYPE_INT32", "INT32"),
    "INT64": ("TYPE_INT64", "INT64"), "FP16": ("TYPE_FP16", "FLOAT16"),
    "FP32": ("TYPE_FP32", "FLOAT"), "FP64": ("TYPE_FP64", "DOUBLE"),
    "BYTES": ("TYPE_STRING", "STRING"), "BF16": ("TYPE_BF16", "BFLOAT16"),
}


def write_model_repository(root: Path, name: str, version: int, onnx: Path | bytes,
                           inputs: list[TensorSpec], outputs: list[TensorSpec],
                           max_batch_size: int = 64,
                           preferred_batch_sizes: Sequence[int] = (),
                           max_queue_delay_us: int = 1000) -> Path:
    """Write (or add a version to) the model folder ``root/name``; returns that folder.

    ``onnx`` is the graph's bytes or its path (external data files beside it are copied too).
    A version already there with the same files is left alone.
    """
    root = Path(root)
    _check_arguments(name, version, max_batch_size, preferred_batch_sizes, max_queue_delay_us)
    _check_tensors(inputs, outputs, max_batch_size)
    external = _check_graph(onnx, inputs, outputs)
    config = _build_config(name, inputs, outputs, max_batch_size, preferred_batch_sizes,
                           max_queue_delay_us)
    text = triton_schema.to_text(config)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    model_dir = root / name
    if model_dir.exists() and not (model_dir / "config.pbtxt").is_file():
        if not model_dir.is_dir() or any(model_dir.iterdir()):
            raise InputError(f"{model_dir} exists and is not a Triton model folder "
                             "(it has no config.pbtxt); pick another model name")
        model_dir.rmdir()
    if not model_dir.exists():
        # The whole folder appears at once: a Triton polling the repository never sees a
        # model without its config (it would guess one for an ONNX model).
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".part"))
        try:
            _write_version(staging / str(version), onnx, external)
            _atomic_write(staging / "config.pbtxt", text.encode())
            os.chmod(staging, 0o777 & ~_umask())
            os.rename(staging, model_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return model_dir
    _check_compatible(model_dir, config)
    version_dir = model_dir / str(version)
    if version_dir.exists():
        _check_same_version(version_dir, onnx, external)
    else:
        staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.", suffix=".part"))
        try:
            _write_version(staging, onnx, external)
            os.rename(staging, version_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    if (model_dir / "config.pbtxt").read_text(encoding="utf-8") != text:
        _atomic_write(model_dir / "config.pbtxt", text.encode())
    return model_dir


def _check_arguments(name: str, version: int, max_batch_size: int,
                     preferred: Sequence[int], delay_us: int) -> None:
    if not NAME_RE.match(name):
        raise InputError(f"invalid Triton model name {name!r}: use 1-128 letters, digits, '.', "
                         "'_' or '-', starting with a letter or digit")
    # Triton ignores version folders that are not a positive number ("0" and "01" included).
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"invalid model version {version!r}: Triton versions are numbers from 1")
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) \
            or not 0 <= max_batch_size < 2**31:
        raise InputError(f"invalid max_batch_size {max_batch_size!r}: use 0 (no batching) "
                         "or a positive number")
    if max_batch_size == 0 and preferred:
        raise InputError("preferred batch sizes need batching: max_batch_size is 0")
    for size in preferred:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= max_batch_size:
            raise InputError(f"invalid preferred batch size {size!r}: use a number from 1 to "
                             f"max_batch_size ({max_batch_size})")
    if isinstance(delay_us, bool) or not isinstance(delay_us, int) or not 0 <= delay_us < 2**63:
        raise InputError(f"invalid max queue delay {delay_us!r} µs: use 0 or more microseconds")


def _check_tensors(inputs: list[TensorSpec], outputs: list[TensorSpec],
                   max_batch_size: int) -> None:
    if not inputs or not outputs:
        raise InputError("a Triton model needs at least one input and one output")
    for role, specs in (("input", inputs), ("output", outputs)):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise InputError(f"{role} names repeat: {names}")
        for spec in specs:
            if not spec.name:
                raise InputError(f"an {role} has an empty name")
            if spec.datatype not in DATATYPES:
                raise InputError(f"{role} {spec.name!r} has datatype {spec.datatype!r}, which "
                                 f"Triton does not know; use one of {', '.join(DATATYPES)}")
            if any(isinstance(d, bool) or not isinstance(d, int) or (d < 1 and d != -1)
                   for d in spec.shape):
                raise InputError(f"{role} {spec.name!r} has shape {list(spec.shape)}: each axis "
                                 "is a positive size or -1 (dynamic)")
            if max_batch_size > 0 and (not spec.shape or spec.shape[0] != -1):
                raise InputError(
                    f"{role} {spec.name!r} has shape {list(spec.shape)}: with max_batch_size "
                    f"{max_batch_size} Triton batches along the first axis, which must be dynamic "
                    "(-1); export with max_batch_size 0 to serve it unbatched")


def _build_config(name: str, inputs: list[TensorSpec], outputs: list[TensorSpec],
                  max_batch_size: int, preferred: Sequence[int], delay_us: int) -> Any:
    config = triton_schema.model_config_class()(
        name=name, platform=PLATFORM, max_batch_size=max_batch_size)
    config.version_policy.all.SetInParent()  # serve every version folder present
    for field, specs in ((config.input, inputs), (config.output, outputs)):
        for spec in specs:
            tensor = field.add(name=spec.name, data_type=DATATYPES[spec.datatype][0])
            dims = list(spec.shape[1:] if max_batch_size > 0 else spec.shape)
            if not dims:
                # A tensor that is only the batch axis: Triton wants dims [1] reshaped to [].
                dims = [1]
                tensor.reshape.SetInParent()
            tensor.dims.extend(dims)
    if max_batch_size > 0:
        config.dynamic_batching.preferred_batch_size.extend(sorted(set(preferred)))
        config.dynamic_batching.max_queue_delay_microseconds = delay_us
    return config


def _signature(config: Any) -> dict[str, Any]:
    """What every version folder must agree on: how requests map onto the graph."""
    def tensors(field: Any) -> dict[str, tuple]:
        return {t.name: (config.DESCRIPTOR.file.enum_types_by_name["DataType"]
                         .values_by_number[t.data_type].name,
                         list(t.dims), list(t.reshape.shape) if t.HasField("reshape") else None)
                for t in field}
    return {"platform": config.platform, "batching": config.max_batch_size > 0,
            "input": tensors(config.input), "output": tensors(config.output)}


def _check_compatible(model_dir: Path, config: Any) -> None:
    from google.protobuf import text_format

    path = model_dir / "config.pbtxt"
    try:
        existing = triton_schema.parse(path.read_text(encoding="utf-8"))
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} was not written by this export and cannot be updated "
                         f"({exc}); pick another model name") from None
    there, here = _signature(existing), _signature(config)
    if there == here:
        return
    if there["platform"] != here["platform"]:
        what = f"its platform is {there['platform']!r}, not {here['platform']!r}"
    elif there["batching"] != here["batching"]:
        what = (f"max_batch_size is {existing.max_batch_size} there and {config.max_batch_size} "
                "here, and batching or not changes every tensor's dims")
    else:
        what = _first_difference(there, here)
    versions = sorted(p.name for p in model_dir.iterdir() if p.name.isdigit())
    raise InputError(
        f"{model_dir} already serves version(s) {', '.join(versions) or 'none'} with other "
        f"tensors: {what}; Triton serves all versions of a model with one config, so export "
        "this one under another model name")


def _first_difference(there: dict[str, Any], here: dict[str, Any]) -> str:
    def show(entry: tuple) -> str:
        return f"{entry[0]} dims {entry[1]}"
    for role in ("input", "output"):
        old, new = there[role], here[role]
        for name in sorted(set(old) | set(new)):
            if name not in new:
                return f"{role} {name!r} is there and not in this version"
            if name not in old:
                return f"{role} {name!r} is new in this version"
            if old[name] != new[name]:
                return f"{role} {name!r} is {show(old[name])} there and {show(new[name])} here"
    return "their tensors differ"


def _check_graph(onnx_model: Path | bytes, inputs: list[TensorSpec],
                 outputs: list[TensorSpec]) -> list[str]:
    """Check the graph takes and gives the declared tensors (Triton refuses to load a config
    that disagrees with its model, in a log line a user may never see); returns its external
    data files, relative to its folder."""
    import onnx
    from google.protobuf.message import DecodeError

    where = str(onnx_model) if isinstance(onnx_model, Path) else "the ONNX model"
    try:
        if isinstance(onnx_model, Path):
            if not onnx_model.is_file():
                raise InputError(f"{onnx_model}: no such file")
            model = onnx.load(str(onnx_model), load_external_data=False)
        else:
            model = onnx.load_model_from_string(bytes(onnx_model))
    except (DecodeError, ValueError, OSError) as exc:
        raise InputError(f"{where} is not an ONNX model: {exc}") from None
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in initializers]
    for role, declared, values in (("input", inputs, graph_inputs),
                                   ("output", outputs, list(model.graph.output))):
        by_name = {v.name: v for v in values}
        if set(by_name) != {s.name for s in declared}:
            raise InputError(f"{where} has {role}s {sorted(by_name)}, but "
                             f"{sorted(s.name for s in declared)} were declared")
        for spec in declared:
            problem = _tensor_mismatch(spec, by_name[spec.name], onnx)
            if problem:
                raise InputError(f"{where}: {role} {spec.name!r} {problem}")
    external: list[str] = []
    for tensor in model.graph.initializer:
        if onnx.external_data_helper.uses_external_data(tensor):
            location = onnx.external_data_helper.ExternalDataInfo(tensor).location
            if location not in external:
                external.append(location)
    if external and not isinstance(onnx_model, Path):
        raise InputError(f"{where} keeps its weights in external files "
                         f"({', '.join(external)}); pass the path of its .onnx file")
    for location in external:
        parts = PurePosixPath(location).parts
        if not parts or PurePosixPath(location).is_absolute() or ".." in parts:
            raise InputError(f"{where} names the external data file {location!r}, which is "
                             "not inside its folder")
        if not (onnx_model.parent / location).is_file():  # type: ignore[union-attr]
            raise InputError(f"{where} needs {onnx_model.parent / location}, which is missing")  # type: ignore[union-attr]
    return external


def _tensor_mismatch(spec: TensorSpec, value: Any, onnx: Any) -> str | None:
    tensor_type = value.type.tensor_type
    expected = DATATYPES[spec.datatype][1]
    actual = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
    if actual != expected:
        return f"is {actual} in the graph, not {spec.datatype}"
    if not tensor_type.HasField("shape"):
        return None  # the graph leaves the shape open: any declared shape fits
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    if len(dims) != len(spec.shape) or any(
            g != -1 and g != d for g, d in zip(dims, spec.shape, strict=True)):
        return f"has shape {dims} in the graph, not {list(spec.shape)}"
    return None


def _write_version(version_dir: Path, onnx_model: Path | bytes, external: list[str]) -> None:
    version_dir.mkdir(exist_ok=True)
    os.chmod(version_dir, 0o777 & ~_umask())  # mkdtemp makes 0700; Triton may run as another user
    if isinstance(onnx_model, Path):
        _atomic_write(version_dir / MODEL_FILE, onnx_model.read_bytes())
        for location in external:
            target = version_dir / location
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, (onnx_model.parent / location).read_bytes())
    else:
        _atomic_write(version_dir / MODEL_FILE, bytes(onnx_model))


def _check_same_version(version_dir: Path, onnx_model: Path | bytes, external: list[str]) -> None:
    if isinstance(onnx_model, Path):
        pairs = [(version_dir / MODEL_FILE, onnx_model)]
        pairs += [(version_dir / loc, onnx_model.parent / loc) for loc in external]
        same = all(a.is_file() and a.read_bytes() == b.read_bytes() for a, b in pairs)
    else:
        target = version_dir / MODEL_FILE
        same = target.is_file() and target.read_bytes() == bytes(onnx_model)
    if not same:
        raise InputError(f"{version_dir} already holds another model; export under another "
                         "version number or model name")


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file beside ``path``, fsync, rename: Triton never reads half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a server may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
