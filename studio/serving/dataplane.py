"""The transport-agnostic inference service: models in, V2 and records answers out.

HTTP routes stay thin over this; errors are domain errors that the edge maps to statuses.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio import __version__
from studio.core import registry
from studio.core.casting import checked_cast
from studio.core.drift import DriftMonitor
from studio.core.errors import InputError, IntegrityError, NotFoundError, StudioError
from studio.core.graph_model import GraphModel
from studio.core.predict import Predictor
from studio.core.printable import brief as _brief
from studio.core.registry.refs import version_number
from studio.core.workspace import Workspace
from studio.serving import binary, quick, rawtext
from studio.serving.binary import Encoded
from studio.serving.calls import served
from studio.serving.canary import Canary
from studio.serving.records import rows_of

V2_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}
NUMPY_TO_V2 = {v: k for k, v in V2_DTYPES.items()}
ONNX_TO_V2 = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16",
              "tensor(bfloat16)": "BF16", "tensor(int64)": "INT64", "tensor(int32)": "INT32",
              "tensor(int16)": "INT16", "tensor(int8)": "INT8", "tensor(uint64)": "UINT64",
              "tensor(uint32)": "UINT32", "tensor(uint16)": "UINT16", "tensor(uint8)": "UINT8",
              "tensor(bool)": "BOOL", "tensor(string)": "BYTES"}
MAX_BATCH = 100_000
MAX_ELEMENTS = 16_000_000
Runtime = Predictor | GraphModel


@dataclass
class Call:
    """A decoded V2 request: the model, its checked input tensors, the outputs asked for
    (name, whether it goes back binary) and what the answer's header echoes."""

    model: Runtime
    tensors: dict[str, np.ndarray]
    outputs: list[tuple[str, bool]]
    head: dict[str, Any]


@dataclass(frozen=True)
class Served:
    """What the server serves at one moment. Never changed once published: a change builds
    the next one, and a request reads the one it found from start to end (no lock on the
    request path, and no half-made switch to see)."""

    models: dict[str, dict[int, Any]]  # NAME → version → runtime
    latest: dict[str, int]  # what plain NAME answers with


class ModelRepository:
    """The versions a server serves, each with its own ONNX Runtime session.

    A version asked for as ``NAME@ALIAS`` is followed: :meth:`follow_aliases` loads and
    warms the version the alias points at now, then switches to it in one step; requests
    already running finish on the version they started with (they hold it), and a version
    nothing asks for any more is let go. Every change (following, the admin routes, a
    canary) holds ``changing`` from start to end, loading included."""

    def __init__(self, ws: Workspace, refs: list[str], threads: int = 0,
                 factory: Callable[[Workspace, registry.Version, int], Any] | None = None
                 ) -> None:
        self.ws, self.threads = ws, threads
        self._factory = factory or _runtime
        self.changing = threading.RLock()
        self.state = Served({}, {})
        self.followed: dict[str, int] = {}  # NAME@ALIAS → the version it is served as
        self.pinned: set[tuple[str, int]] = set()  # asked for as NAME or NAME:N
        self.canaries: dict[str, Canary] = {}  # by the ref clients address; replaced whole
        self._refused: dict[str, int] = {}  # NAME@ALIAS → a version it could not load
        self.drift: dict[tuple[str, int], DriftMonitor] = {}
        self._shadows = ThreadPoolExecutor(1, thread_name_prefix="studio-canary")
        for ref in refs:
            self.add(ref)

    @property
    def models(self) -> dict[str, dict[int, Any]]:
        return self.state.models

    @property
    def latest(self) -> dict[str, int]:
        return self.state.latest

    def _load(self, name: str, number: int, ws: Workspace | None = None) -> None:
        """Load and warm NAME:N (under ``changing``); published with the next change."""
        if number in self.state.models.get(name, {}):
            return
        version = registry.get_version(ws := ws or self.ws, f"{name}:{number}")
        try:
            runtime = self._factory(ws, version, self.threads)
        except IntegrityError as exc:
            raise IntegrityError(f"{version.ref} cannot be served: {exc} (run `studio "
                                 "models verify`)") from None
        except StudioError:
            raise
        except Exception as exc:  # ONNX Runtime refusing the graph: its own error types
            raise InputError(f"{version.ref} cannot be served: ONNX Runtime could not load "
                             f"it ({type(exc).__name__})") from None
        _warm(runtime)  # its first call's setup paid here, not by a client after a switch
        reference = version.manifest.raw.get("drift")
        if reference and hasattr(runtime, "observer"):
            monitor = DriftMonitor(reference)
            runtime.observer = monitor.observe
            self.drift[(name, number)] = monitor
        models = {n: dict(v) for n, v in self.state.models.items()}
        models.setdefault(name, {})[number] = runtime
        self._publish(models)

    def _publish(self, models: dict[str, dict[int, Any]]) -> None:
        """Make ``models`` what is served: each NAME answers with the newest version asked
        for (as NAME, NAME:N or through an alias), never a canary's candidate beside it."""
        latest = {}
        for name, versions in models.items():
            asked = [v for v in versions if (name, v) in self.pinned or any(
                k.split("@")[0] == name and f == v for k, f in self.followed.items())]
            if asked:
                latest[name] = max(asked)
        self.state = Served(models, latest)

    def follow_aliases(self, ws: Workspace | None = None) -> list[str]:
        """Switch each followed alias to where it points now (loading and warming that
        version first); the switches made, as lines. An alias that is gone or points at a
        version that cannot load keeps being served as it was. ``ws``: the workspace to
        read through (a watching thread's own connection)."""
        ws = ws or self.ws
        changes = []
        with self.changing:
            keys = list(self.followed)
        for key in keys:
            with self.changing:
                had = self.followed.get(key)
                if had is None:  # stopped being served meanwhile
                    continue
                try:
                    name, number = registry.resolve(ws, key)
                except StudioError:  # the alias is gone: keep serving what it pointed at
                    continue
                if number == had or self._refused.get(key) == number:
                    continue
                try:
                    self._load(name, number, ws)
                except StudioError as exc:
                    self._refused[key] = number  # said once, not every half second
                    changes.append(f"{key}: stays on {name}:{had}; {exc}")
                    continue
                self.followed[key] = number
                self._let_go(name, had)  # publishes the switch in one step
                changes.append(f"{key}: {name}:{had} → {name}:{number}")
        return changes

    def _let_go(self, name: str, number: int) -> None:
        """Unload a version nothing asks for any more, and publish (under ``changing``; a
        request running on it holds it until it ends)."""
        models = {n: dict(v) for n, v in self.state.models.items()}
        held = (name, number) in self.pinned or any(
            k.split("@")[0] == name and v == number for k, v in self.followed.items()) or any(
            c.name == name and c.number == number for c in self.canaries.values())
        if not held:
            models.get(name, {}).pop(number, None)
            self.drift.pop((name, number), None)
            if not models.get(name, True):  # its last version: the name is not served
                models.pop(name, None)
        self._publish(models)

    def add(self, ref: str, ws: Workspace | None = None) -> str:
        """Serve ``ref`` too, loaded and warmed before it answers (NAME@ALIAS is followed
        from then on); the NAME:N it serves. ``ws``: a worker thread's own connection."""
        with self.changing:
            name, number = registry.resolve(ws or self.ws, ref)
            self._load(name, number, ws)
            if "@" in ref:
                self.followed[_alias_key(ref)] = number
            else:
                self.pinned.add((name, number))
            self._publish(self.state.models)
        return f"{name}:{number}"

    def remove(self, ref: str) -> None:
        """Stop serving ``ref``: NAME@ALIAS stops following it, NAME:N that version (and the
        aliases followed to it), NAME every version of the model; a canary on what is no
        longer served ends. Requests running on a version finish on it."""
        name, _, alias = ref.partition("@")
        name, _, number = name.partition(":")
        with self.changing:
            served = self.state.models.get(name)
            if served is None:
                raise NotFoundError(f"model {_brief(name)} is not served here")
            if alias:
                if _alias_key(ref) not in self.followed:
                    raise NotFoundError(f"{_brief(ref)} is not served here")
                dropped = {(name, self.followed.pop(_alias_key(ref)))}
            else:
                wanted = version_number(number) if number else None
                if number and wanted not in served:
                    raise NotFoundError(f"{_brief(ref)} is not served here")
                dropped = {(name, v) for v in served if wanted is None or v == wanted}
                self.pinned -= dropped
                for key, v in list(self.followed.items()):
                    if (key.split("@")[0], v) in dropped:
                        del self.followed[key]
            still = {*self.followed, *(n for n, _ in self.pinned)}
            ended = {k: c for k, c in self.canaries.items() if k not in still}
            self.canaries = {k: c for k, c in self.canaries.items() if k in still}
            for n, v in dropped | {(c.name, c.number) for c in ended.values()}:
                self._let_go(n, v)

    def route(self, name: str, version: str | None = None
              ) -> tuple[Predictor | GraphModel, Canary | None]:
        """The runtime that answers this request, and the canary when it is the canary's
        candidate that was picked (the route then compares it with the primary)."""
        primary = self.get(name, version)
        if version or not self.canaries:
            return primary, None
        canary = self.canaries.get(name)
        if canary is None or not canary.pick():
            return primary, None
        candidate = self.state.models.get(canary.name, {}).get(canary.number)
        return (primary, None) if candidate is None else (candidate, canary)

    def set_canary(self, ref: str, candidate: str, percent: float,
                   ws: Workspace | None = None) -> Canary:
        """Send ``percent`` of the requests for ``ref`` (a served NAME or NAME@ALIAS) to the
        ``candidate`` version (loaded and warmed first)."""
        ws = ws or self.ws
        with self.changing:
            asked = {*self.followed, *(n for n, _ in self.pinned)}
            if ":" in ref or ref not in asked:
                raise InputError(f"{_brief(ref)} is not served here as NAME or NAME@ALIAS; a "
                                 f"canary shares the traffic of one of: "
                                 f"{', '.join(sorted(asked)) or 'none'}")
            if not 0 < percent <= 100:
                raise InputError(f"a canary's share must be above 0 and at most 100 percent, "
                                 f"not {percent:g}")
            primary = self.get(ref)
            name, number = registry.resolve(ws, candidate)
            self._load(name, number, ws)
            runtime = self.state.models[name][number]
            if _signature(runtime) != _signature(primary):
                self._let_go(name, number)
                raise InputError(f"{name}:{number} takes other inputs than {ref} "
                                 f"({primary.version.ref}): it cannot answer the same "
                                 "requests")
            canary = Canary(ref, name, number, percent, task=getattr(primary, "task", None))
            old = self.canaries.get(ref)
            self.canaries = {**self.canaries, ref: canary}
            if old is not None:
                self._let_go(old.name, old.number)
        return canary

    def shadow(self, canary: Canary, primary: Callable[[], np.ndarray],
               candidate: np.ndarray) -> None:
        """Compare the primary's answer with the candidate's off the request path."""
        if canary.begin():
            self._shadows.submit(canary.compare, primary, candidate)

    def clear_canary(self, ref: str) -> None:
        with self.changing:
            old = self.canaries.get(ref)
            if old is None:
                raise NotFoundError(f"no canary on {_brief(ref)}")
            self.canaries = {k: c for k, c in self.canaries.items() if k != ref}
            self._let_go(old.name, old.number)

    def drift_report(self) -> dict[str, Any]:
        """Per served version with a training reference, how its inputs have moved."""
        return {f"{n}:{v}": m.report() for (n, v), m in sorted(self.drift.items())}

    def served(self) -> list[str]:
        """NAME:N of every version loaded here."""
        return [f"{n}:{v}" for n, versions in sorted(self.models.items()) for v in versions]

    def get(self, name: str, version: str | None = None) -> Predictor | GraphModel:
        """The runtime for NAME, NAME:N (``version``) or NAME@ALIAS, from what is served now
        (read without a lock: a switch publishes a whole new state)."""
        if "@" in name and not version:
            return self._by_alias(name)
        state = self.state
        versions = state.models.get(name)
        if versions is None or (not version and name not in state.latest):
            raise NotFoundError(f"model {_brief(name)} is not served here; served: "
                                f"{', '.join(sorted(state.latest)) or 'none'}")
        if not version:
            return versions[state.latest[name]]
        number = version_number(version)
        if number not in versions:
            raise NotFoundError(f"version {version[:40]!r} of model {name!r} is not served "
                                f"here; served: {', '.join(map(str, sorted(versions)))}")
        return versions[number]

    def _by_alias(self, ref: str) -> Predictor | GraphModel:
        """NAME@ALIAS: a followed alias's version, else where the alias points now, if this
        server loaded that version."""
        name = ref.split("@")[0]
        for _ in range(2):  # a switch between the two reads: read both again
            followed = self.followed.get(_alias_key(ref))
            runtime = self.state.models.get(name, {}).get(followed)  # type: ignore[arg-type]
            if runtime is not None:
                return runtime
        not_served = NotFoundError(f"{_brief(ref)} is not served here")
        if name not in self.state.latest:  # nothing of it served: no registry look-up
            raise not_served
        try:
            _, number = registry.resolve(self.ws, ref)
        except InputError:
            raise not_served from None
        runtime = self.state.models.get(name, {}).get(number)
        if runtime is None:
            raise not_served
        return runtime

    # -- Open Inference Protocol -------------------------------------------------------------

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "model-studio", "version": __version__,
                "extensions": [binary.EXTENSION]}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        p = self.get(name, version)
        return {
            "name": p.version.name,
            "versions": [str(v) for v in sorted(self.models[p.version.name])],
            "platform": "onnxruntime_onnx",
            "inputs": [_tensor_meta(i) for i in p.session.get_inputs()],
            "outputs": [_tensor_meta(o) for o in p.session.get_outputs()],
            "parameters": {"task": p.task, "labels": p.labels,
                           "raw_columns": p.manifest.raw.get("input_schema"),
                           "text_inputs": list(rawtext.text_specs(p).values())},
        }

    def infer(self, name: str, version: str | None, request: Any) -> dict[str, Any] | Encoded:
        """A V2 request already parsed from JSON, answered in one call (the three steps the
        HTTP route takes apart: decode, run, encode)."""
        model, canary = self.route(name, version)
        call = self.decode_request(model, request, None)
        out = call.model.run(call.tensors)
        if canary is not None:
            self.compare_canary(canary, name, call.tensors, out)
        return self.encode(call, out)

    def compare_canary(self, canary: Canary, name: str, tensors: Mapping[str, np.ndarray],
                       out: Mapping[str, np.ndarray]) -> None:
        """The candidate answered ``tensors`` with ``out``: compare the primary, off the
        request path."""
        primary = self.get(name)
        self.shadow(canary, lambda: next(iter(primary.run(tensors).values())),
                    next(iter(out.values())))

    def decode(self, model: Runtime, body: bytes | bytearray,
               header_length: str | None = None) -> Call:
        """A V2 request body (JSON, or JSON then binary tensors when ``header_length``, the
        Inference-Header-Content-Length header, is given) as checked tensors."""
        request, tail = binary.split_body(body, header_length)
        return self.decode_request(model, request, tail)

    def decode_request(self, p: Runtime, request: Any, tail: memoryview | None) -> Call:
        common = None if tail is not None else quick.tensors(p, request, MAX_BATCH,
                                                              MAX_ELEMENTS)
        if common is not None:
            return Call(p, common, [(n, False) for n in p.outputs], _head(p, request))
        if not isinstance(request, Mapping):
            raise InputError("request body must be a JSON object")
        _check_request(request)
        inputs = request.get("inputs")
        specs, raw_text = rawtext.expected_inputs(
            p, {s["name"]: s for s in p.inputs}, inputs if isinstance(inputs, list) else [])
        if not isinstance(inputs, list) or len(inputs) != len(specs):
            raise InputError(f"'inputs' must be a list of {len(specs)} tensor"
                             f"{'s' if len(specs) > 1 else ''}: "
                             + ", ".join(repr(n) for n in specs))
        if tail is not None:
            binary.check_sizes(inputs, tail)
        wanted = _requested_outputs(request, p.outputs)  # before any tensor is built
        flags = binary.binary_flags(request, wanted)
        parts = binary.Tail(tail)
        tensors: dict[str, np.ndarray] = {}
        total = 0
        for tensor in inputs:
            x = _decode_input(tensor, specs, parts)
            if tensor["name"] in tensors:
                raise InputError(f"input {tensor['name']!r} is sent twice")
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
        if raw_text:
            tensors = rawtext.tokenize(p, tensors)
        return Call(p, tensors, list(zip(wanted, flags, strict=True)), _head(p, request))

    def encode(self, call: Call, out: Mapping[str, np.ndarray]) -> dict[str, Any] | Encoded:
        """The answer to ``call`` from the model's outputs: a dict to send as JSON, or a
        JSON header with binary outputs after it."""
        if not any(flag for _, flag in call.outputs):  # the JSON path, as lean as it was
            return {**call.head, "outputs": [encode_tensor(n, out[n]) for n, _ in call.outputs]}
        return binary.encode_response(call.head, [(n, out[n], b) for n, b in call.outputs])

    # -- records endpoint -------------------------------------------------------------------

    def predict_records(self, name: str, version: str | None, body: Any) -> dict[str, Any]:
        """Raw rows in any format of ``records.rows_of`` (a parsed JSON body, or a
        ``CsvBody``) through the model's recipe."""
        p, canary = self.route(name, version)
        if p.recipe is None:
            return p.predict_records(body)  # says it takes tensors only
        # the limit is per model, and checked before a row is built
        rows = rows_of(body, p.max_rows)
        result = p.predict_records(rows)
        served(p.version.name, p.version.version, len(result["predictions"]), batch=True)
        if canary is not None:
            primary = self.get(name)
            self.shadow(canary, lambda: _answer_array(primary.predict_records(rows)),
                        _answer_array(result))
        return {"model_name": p.version.name, "model_version": str(p.version.version),
                **result}


def _head(p: Runtime, request: Mapping[str, Any]) -> dict[str, Any]:
    """What the answer echoes before its outputs."""
    head: dict[str, Any] = {"model_name": p.version.name,
                            "model_version": str(p.version.version)}
    if "id" in request:
        head["id"] = request["id"]
    return head


def _answer_array(result: Mapping[str, Any]) -> np.ndarray:
    """A records answer as numbers: class probabilities, or the predicted values."""
    if "probabilities" in result:
        return np.asarray(result["probabilities"], dtype=np.float64)
    return np.asarray(result.get("predictions", []), dtype=np.float64).reshape(-1, 1)


def _signature(runtime: Any) -> list[tuple[Any, ...]]:
    return [(s["name"], s["datatype"], tuple(s["shape"][1:])) for s in runtime.inputs]


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
            shape = [1, *[d if d > 0 else 1 for d in spec["shape"][1:]]]
            feed[spec["name"]] = (np.full(shape, "", dtype=object)
                                  if spec["datatype"] == "BYTES" else
                                  np.zeros(shape, V2_DTYPES.get(spec["datatype"], np.float32)))
        runtime.run(feed)
    except Exception:  # a graph that refuses zeros still serves what it accepts
        return


def _tensor_meta(node: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else -1 for d in node.shape]
    return {"name": node.name, "datatype": ONNX_TO_V2.get(node.type, node.type), "shape": shape}


def decode_tensor(tensor: Any, expected: Mapping[str, Any]) -> np.ndarray:
    """A V2 tensor of numbers sent as JSON ``data``; ``expected`` maps the model's input
    names to their specs. Name, datatype and shape are checked as for binary data."""
    name, datatype, shape = binary.tensor_header(tensor, expected)
    if datatype not in V2_DTYPES or datatype == "BOOL":  # true/false and text: not here
        raise InputError(f"input {name!r}: unsupported datatype {datatype!r}")
    _check_parameters(tensor, f"input {name!r}")
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
        raise InputError(f"input {name!r}: 'data' is ragged or nested too deep") from None
    if raw.size and raw.dtype.kind not in "iuf":
        raise InputError(f"input {name!r}: 'data' must hold {datatype} numbers only")
    if raw.size != size:
        raise InputError(f"input {name!r}: shape {shape} needs {size} values, got {raw.size}")
    return checked_cast(raw, V2_DTYPES[datatype], f"input {name!r}", datatype).reshape(shape)


def encode_tensor(name: str, arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.kind in "OUS":
        return binary.encode_output(name, arr, False)[0]
    # JSON has no NaN: never null. A finite sum means every value is finite (one reduction,
    # not two); a sum that overflowed is checked value by value.
    if arr.dtype.kind == "f" and not math.isfinite(arr.sum()) and not np.isfinite(arr).all():
        raise StudioError(f"the model's output {name!r} holds NaN or infinity, which JSON "
                          "cannot carry; ask for it as binary data")
    return {"name": name, "datatype": NUMPY_TO_V2.get(arr.dtype, "FP32"),
            "shape": list(arr.shape), "data": arr.reshape(-1).tolist()}


def _decode_input(tensor: Any, specs: Mapping[str, Any], tail: binary.Tail) -> np.ndarray:
    """One input, from JSON or binary data: text (BYTES), true/false (BOOL) or numbers."""
    if not isinstance(tensor, Mapping):
        return decode_tensor(tensor, specs)  # which says what an input must be
    if "parameters" in tensor and binary.binary_size(tensor) is not None:
        return binary.decode_binary(tensor, specs, tail)
    name, datatype = tensor.get("name"), tensor.get("datatype")
    if datatype in ("BOOL", "BYTES") or (
            isinstance(name, str) and specs.get(name, {}).get("datatype") == "BYTES"):
        return binary.decode_json_items(tensor, specs)
    return decode_tensor(tensor, specs)


def _requested_outputs(request: Mapping[str, Any], available: list[str]) -> list[str]:
    outputs = request.get("outputs")
    if outputs is None:
        return available
    if not isinstance(outputs, list) or not all(isinstance(o, Mapping) for o in outputs):
        raise InputError("'outputs' must be a list of {\"name\": ...} objects")
    names = [o.get("name") for o in outputs]
    unknown = [n for n in names if not isinstance(n, str) or n not in available]
    if unknown:
        raise InputError(f"unknown output {_brief(unknown[0])}; available: "
                         f"{', '.join(available)}")
    for o in outputs:
        _check_parameters(o, f"output {o['name']!r}")
    return names


def _check_request(request: Mapping[str, Any]) -> None:
    """What the V2 request carries besides its tensors, as the protocol types it."""
    if "id" in request and not isinstance(request["id"], str):
        raise InputError("'id' must be a string")
    _check_parameters(request, "the request")


def _check_parameters(holder: Mapping[str, Any], what: str) -> None:
    parameters = holder.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InputError(f"'parameters' of {what} must be an object")
