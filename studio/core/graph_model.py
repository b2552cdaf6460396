"""A version that takes tensors only (an ONNX model made elsewhere): its graph's own input
and output names, datatypes and shapes, checked on every call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from studio.core.casting import checked_cast
from studio.core.errors import InputError
from studio.core.registry import Version, read_file
from studio.core.workspace import Workspace

NUMPY = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64,
         "INT32": np.int32, "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8,
         "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64, "BOOL": np.bool_}


class GraphModel:
    """One ONNX Runtime session for a version without a recipe."""

    task: str | None = None
    labels: list[str] | None = None
    recipe = None
    max_rows = 0
    heavy = False  # tensors in, no decoding: runs on the event loop's worker like a table

    def __init__(self, ws: Workspace, version: Version, threads: int = 0) -> None:
        from studio.core.predict import session_options

        self.version = version
        self.manifest = version.manifest
        if "model.onnx" not in self.manifest.files:
            raise InputError(f"{version.ref} cannot be served: it holds weights only, with no "
                             "ONNX graph to run")
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(read_file(ws, version, "model.onnx"),
                                            session_options(threads), providers=providers)
        self.inputs = [t.to_dict() for t in self.manifest.inputs]
        self.outputs = [o.name for o in self.session.get_outputs()]
        unsupported = [t for t in self.inputs if t["datatype"] not in (*NUMPY, "BYTES")]
        if unsupported:
            t = unsupported[0]
            raise InputError(f"{version.ref} cannot be served over V2 JSON: input "
                             f"{t['name']!r} is {t['datatype']}")

    def run(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {}
        for spec in self.inputs:
            name, shape = spec["name"], spec["shape"]
            if name not in tensors:
                raise InputError(f"missing input tensor {name!r}")
            x = tensors[name]
            if x.ndim != len(shape) or any(d not in (-1, n) for d, n in zip(shape, x.shape,
                                                                           strict=True)):
                want = ", ".join("any" if d == -1 else str(d) for d in shape)
                raise InputError(f"input {name!r} must have shape [{want}], got {list(x.shape)}")
            if spec["datatype"] == "BYTES":  # text: an object array of str
                if x.dtype.kind != "O" or not all(isinstance(v, str) for v in x.flat):
                    raise InputError(f"input {name!r} takes BYTES (text), got {x.dtype.name} "
                                     "data")
                feed[name] = x
                continue
            dtype = np.dtype(NUMPY[spec["datatype"]])
            if x.dtype.kind != dtype.kind and not (x.dtype.kind in "iu" and dtype.kind in "iu"):
                raise InputError(f"input {name!r} takes {spec['datatype']}, got "
                                 f"{x.dtype.name} data")
            feed[name] = checked_cast(x, dtype, f"input {name!r}", spec["datatype"])
        extra = set(tensors) - set(feed)
        if extra:
            raise InputError(f"unknown input {sorted(extra)[0]!r}; this model takes "
                             + ", ".join(repr(n) for n in feed))
        try:
            values = self.session.run(None, feed)
        except Exception as exc:  # ORT's own types: the graph refused these values; say why
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc)
            raise InputError(f"the model could not run on these inputs: {first}") from None
        return dict(zip(self.outputs, values, strict=True))

    def predict_records(self, records: Any) -> dict[str, Any]:
        raise InputError(f"{self.version.ref} takes V2 tensors, not rows (it has no recipe): "
                         f"POST /v2/models/{self.version.name}/infer")
