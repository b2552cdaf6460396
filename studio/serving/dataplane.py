"""The transport-agnostic inference service: models in, V2 and records answers out.

HTTP routes stay thin over this; errors are domain errors that the edge maps to statuses.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from studio import __version__
from studio.core import registry
from studio.core.errors import InputError, IntegrityError, NotFoundError, StudioError
from studio.core.graph_model import GraphModel
from studio.core.predict import Predictor
from studio.core.workspace import Workspace
from studio.serving.calls import served

V2_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}
NUMPY_TO_V2 = {v: k for k, v in V2_DTYPES.items()}
ONNX_TO_V2 = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
              "tensor(int32)": "INT32", "tensor(float16)": "FP16", "tensor(bool)": "BOOL"}
MAX_BATCH = 100_000
MAX_ELEMENTS = 16_000_000


class ModelRepository:
    """The versions a server serves, each with its own ONNX Runtime session.

    A version asked for as ``NAME@ALIAS`` is followed: :meth:`follow_aliases` loads and
    warms the version the alias points at now, then switches to it in one step; requests
    already running finish on the version they started with (they hold it), and a version
    nothing asks for any more is let go."""

    def __init__(self, ws: Workspace, refs: list[str], threads: int = 0,
                 factory: Callable[[Workspace, registry.Version, int], Any] | None = None
                 ) -> None:
        self.ws, self.threads = ws, threads
        self._factory = factory or _runtime
        self.lock = threading.Lock()
        self.models: dict[str, dict[int, Predictor]] = {}
        self.latest: dict[str, int] = {}
        self.followed: dict[str, int] = {}  # NAME@ALIAS → the version it is served as
        self.pinned: set[tuple[str, int]] = set()  # asked for as NAME or NAME:N
        for ref in refs:
            name, number = registry.resolve(ws, ref)
            self._load(name, number)
            if "@" in ref:
                self.followed[_alias_key(ref)] = number
            else:
                self.pinned.add((name, number))

    def _load(self, name: str, number: int, ws: Workspace | None = None) -> None:
        if number in self.models.get(name, {}):
            return
        version = registry.get_version(ws := ws or self.ws, f"{name}:{number}")
        try:
            runtime = self._factory(ws, version, self.threads)
        except IntegrityError as exc:
            raise IntegrityError(f"{version.ref} cannot be served: {exc} (run `studio "
                                 "models verify`)") from None
        _warm(runtime)  # its first call's setup paid here, not by a client after a switch
        with self.lock:
            self.models.setdefault(name, {})[number] = runtime
            self.latest[name] = max(self.latest.get(name, 0), number)

    def follow_aliases(self, ws: Workspace | None = None) -> list[str]:
        """Switch each followed alias to where it points now (loading and warming that
        version first); the switches made, as lines. An alias that is gone or points at a
        version that cannot load keeps being served as it was. ``ws``: the workspace to
        read through (a watching thread's own connection)."""
        ws = ws or self.ws
        changes = []
        for key, had in list(self.followed.items()):
            try:
                name, number = registry.resolve(ws, key)
                if number != had:
                    self._load(name, number, ws)
            except StudioError:
                continue
            if number == had:
                continue
            with self.lock:
                self.followed[key] = number
                self._let_go(name, had)
            changes.append(f"{key}: {name}:{had} → {name}:{number}")
        return changes

    def _let_go(self, name: str, number: int) -> None:
        """Unload a version nothing asks for any more (a request running on it holds it
        until it ends)."""
        if (name, number) in self.pinned or any(
                k.split("@")[0] == name and v == number for k, v in self.followed.items()):
            return
        versions = self.models.get(name, {})
        versions.pop(number, None)
        if versions:
            self.latest[name] = max(versions)
        else:  # its last version: the name is no longer served
            self.models.pop(name, None)
            self.latest.pop(name, None)

    def add(self, ref: str, ws: Workspace | None = None) -> str:
        """Serve ``ref`` too, loaded and warmed before it answers (NAME@ALIAS is followed
        from then on); the NAME:N it serves. ``ws``: a worker thread's own connection."""
        name, number = registry.resolve(ws or self.ws, ref)
        self._load(name, number, ws)
        with self.lock:
            if "@" in ref:
                self.followed[_alias_key(ref)] = number
            else:
                self.pinned.add((name, number))
        return f"{name}:{number}"

    def remove(self, ref: str) -> None:
        """Stop serving ``ref``: NAME@ALIAS stops following it, NAME:N that version (and the
        aliases followed to it), NAME every version of the model. Requests running on a
        version finish on it."""
        name, _, alias = ref.partition("@")
        name, _, number = name.partition(":")
        with self.lock:
            if name not in self.models:
                raise NotFoundError(f"model {name!r} is not served here")
            if alias:
                if _alias_key(ref) not in self.followed:
                    raise NotFoundError(f"{ref} is not served here")
                dropped = {(name, self.followed.pop(_alias_key(ref)))}
            else:
                if number and (not number.isdigit() or int(number) not in self.models[name]):
                    raise NotFoundError(f"{ref} is not served here")
                dropped = {(name, v) for v in self.models[name]
                           if not number or v == int(number)}
                self.pinned -= dropped
                for key, v in list(self.followed.items()):
                    if (key.split("@")[0], v) in dropped:
                        del self.followed[key]
            for n, v in dropped:
                self._let_go(n, v)

    def served(self) -> list[str]:
        """NAME:N of every version loaded here."""
        return [f"{n}:{v}" for n, versions in sorted(self.models.items()) for v in versions]

    def get(self, name: str, version: str | None = None) -> Predictor | GraphModel:
        if "@" in name and not version:
            return self._by_alias(name)
        versions = self.models.get(name)
        if versions is None:
            raise NotFoundError(f"model {name!r} is not served here; "
                                f"served: {', '.join(sorted(self.models)) or 'none'}")
        if version is None or version == "":
            try:
                return versions[self.latest[name]]
            except KeyError:  # removed by an admin call meanwhile
                raise NotFoundError(f"model {name!r} is not served here") from None
        if not version.isdigit() or int(version) not in versions:
            raise NotFoundError(f"version {version!r} of model {name!r} is not served here")
        return versions[int(version)]

    def _by_alias(self, ref: str) -> Predictor | GraphModel:
        """NAME@ALIAS: a followed alias's version, else where the alias points now, if this
        server loaded that version."""
        with self.lock:  # the alias and its version read together, as one switch left them
            followed = self.followed.get(_alias_key(ref))
            if followed is not None:
                return self.models[ref.split("@")[0]][followed]
        try:
            name, number = registry.resolve(self.ws, ref)
        except InputError as exc:
            raise NotFoundError(str(exc)) from None
        if number not in self.models.get(name, {}):
            raise NotFoundError(f"{ref} points at {name}:{number}, which this server does not "
                                f"serve (it serves {', '.join(self.served())})")
        return self.models[name][number]

    # -- Open Inference Protocol -------------------------------------------------------------

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "model-studio", "version": __version__, "extensions": []}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        p = self.get(name, version)
        return {
            "name": p.version.name,
            "versions": [str(v) for v in sorted(self.models[p.version.name])],
            "platform": "onnxruntime_onnx",
            "inputs": [_tensor_meta(i) for i in p.session.get_inputs()],
            "outputs": [_tensor_meta(o) for o in p.session.get_outputs()],
            "parameters": {"task": p.task, "labels": p.labels,
                           "raw_columns": p.manifest.raw.get("input_schema")},
        }

    def infer(self, name: str, version: str | None, request: Any) -> dict[str, Any]:
        p = self.get(name, version)
        if not isinstance(request, Mapping):
            raise InputError("request body must be a JSON object")
        specs = {s["name"]: s for s in p.inputs}
        inputs = request.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != len(specs):
            raise InputError(f"'inputs' must be a list of {len(specs)} tensor"
                             f"{'s' if len(specs) > 1 else ''}: "
                             + ", ".join(repr(n) for n in specs))
        tensors: dict[str, np.ndarray] = {}
        total = 0
        for tensor in inputs:
            x = decode_tensor(tensor, specs)
            shape = specs[tensor["name"]]["shape"]
            if x.ndim == len(shape) - 1 and list(x.shape) == shape[1:]:
                x = x[np.newaxis]  # one row sent without its batch axis
            if x.shape[0] > MAX_BATCH:
                raise InputError(f"batch of {x.shape[0]} rows is over the limit of {MAX_BATCH}")
            total += x.size
            if total > MAX_ELEMENTS:
                raise InputError(f"inputs hold over {MAX_ELEMENTS:,} values together")
            tensors[tensor["name"]] = x
        batches = {x.shape[0] for x in tensors.values()}
        if len(batches) > 1:
            raise InputError(f"inputs disagree on the batch size: {sorted(batches)}")
        out = p.run(tensors)
        served(p.version.name, p.version.version, next(iter(batches), 0))
        wanted = _requested_outputs(request, p.outputs)
        response: dict[str, Any] = {
            "model_name": p.version.name, "model_version": str(p.version.version),
            "outputs": [encode_tensor(n, out[n]) for n in wanted],
        }
        if "id" in request:
            response["id"] = request["id"]
        return response

    # -- records endpoint -------------------------------------------------------------------

    def predict_records(self, name: str, version: str | None, body: Any) -> dict[str, Any]:
        p = self.get(name, version)
        if not isinstance(body, Mapping) or "instances" not in body:
            raise InputError('body must be {"instances": [{column: value, ...}, ...]}')
        instances = body["instances"]
        if not isinstance(instances, list):
            raise InputError("'instances' must be a list of objects")
        if p.recipe is None:
            return p.predict_records(instances)  # says it takes tensors only
        if len(instances) > p.max_rows:  # before a row is read: the limit is per model
            raise InputError(f"{len(instances):,} instances is over this model's limit of "
                             f"{p.max_rows:,} per request")
        result = p.predict_records(instances)
        served(p.version.name, p.version.version, len(instances))
        return {"model_name": p.version.name, "model_version": str(p.version.version),
                **result}


def _alias_key(ref: str) -> str:
    """NAME@ALIAS as one key (``NAME@latest`` is the bare name, not followed here)."""
    name, _, alias = ref.partition("@")
    return f"{name}@{alias}"


def _runtime(ws: Workspace, version: registry.Version, threads: int) -> Any:
    return (Predictor(ws, version, threads) if version.manifest.recipe is not None
            else GraphModel(ws, version, threads))


def _warm(runtime: Any) -> None:
    """One call on a row of zeros, so a session's lazy setup is done before it serves."""
    try:
        feed = {}
        for spec in runtime.inputs:
            dtype = V2_DTYPES.get(spec["datatype"], np.dtype(np.float32))
            feed[spec["name"]] = np.zeros([1, *[d if d > 0 else 1 for d in spec["shape"][1:]]],
                                          dtype=dtype)
        runtime.run(feed)
    except Exception:  # a graph that refuses zeros still serves what it accepts
        return


def _tensor_meta(node: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else -1 for d in node.shape]
    return {"name": node.name, "datatype": ONNX_TO_V2.get(node.type, node.type), "shape": shape}


def decode_tensor(tensor: Any, expected: Mapping[str, Any]) -> np.ndarray:
    """A V2 tensor as an array; ``expected`` maps the model's input names to their specs."""
    if not isinstance(tensor, Mapping):
        raise InputError("each input must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    if name not in expected:
        raise InputError(f"unknown input {name!r}; this model takes "
                         + ", ".join(repr(n) for n in expected))
    datatype = tensor.get("datatype")
    if datatype not in V2_DTYPES or datatype == "BOOL":
        raise InputError(f"input {name!r}: unsupported datatype {datatype!r}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise InputError(f"input {name!r}: 'shape' must be a list of non-negative integers")
    size = math.prod(shape)  # Python ints: a hostile shape cannot wrap around
    if size > MAX_ELEMENTS:
        raise InputError(f"input {name!r}: shape {shape} is over the limit of "
                         f"{MAX_ELEMENTS:,} values")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InputError(f"input {name!r}: 'data' must be a list")
    try:
        raw = np.asarray(data)  # no dtype yet: strings and booleans must not be coerced
    except ValueError:
        raise InputError(f"input {name!r}: 'data' is ragged") from None
    if raw.size and raw.dtype.kind not in "iuf":
        raise InputError(f"input {name!r}: 'data' must hold {datatype} numbers only")
    with np.errstate(over="ignore", invalid="ignore"):
        arr = raw.astype(V2_DTYPES[datatype])
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"input {name!r}: values must be finite {datatype} numbers")
    if arr.dtype.kind in "iu" and raw.size and raw.dtype.kind == "f":
        raise InputError(f"input {name!r}: {datatype} data must be integers")
    if arr.size != size:
        raise InputError(f"input {name!r}: shape {shape} needs {size} values, got {arr.size}")
    return arr.reshape(shape)


def encode_tensor(name: str, arr: np.ndarray) -> dict[str, Any]:
    return {"name": name, "datatype": NUMPY_TO_V2.get(arr.dtype, "FP32"),
            "shape": list(arr.shape), "data": arr.reshape(-1).tolist()}


def _requested_outputs(request: Mapping[str, Any], available: list[str]) -> list[str]:
    outputs = request.get("outputs")
    if outputs is None:
        return available
    if not isinstance(outputs, list):
        raise InputError("'outputs' must be a list of {\"name\": ...} objects")
    names = [o.get("name") if isinstance(o, Mapping) else None for o in outputs]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InputError(f"unknown output {unknown[0]!r}; available: {', '.join(available)}")
    return names  # type: ignore[return-value]
