"""A model measured on this machine: size, parameters, latency, throughput and memory.

Times come from ONNX Runtime sessions built with the product's own session options (what
``studio serve`` and prediction use), after a warm-up, repeated, as medians. A source and
its candidate are measured in one run, their rounds interleaved (A B B A A B ...), so a
busy neighbour on a shared machine slows both alike and their ratios stay honest.

Peak memory is the growth of a fresh process's peak resident set (Linux ``VmHWM``) from
creating the session and running batch-64 calls: the weights, the arena and the kernels'
scratch, as a server would hold them. It is not measured where ``/proc`` is missing.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import InputError

BATCH = 64
LATENCY_CALLS = 50  # batch-1 calls timed one by one in each round
THROUGHPUT_CALLS = 4  # batch-64 calls timed one by one in each round
WARMUP_ROUNDS = 2
DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64,
          "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


@dataclass(frozen=True)
class Measurement:
    file_bytes: int
    parameters: int  # elements of the graph's stored tensors (initializers and Constants)
    latency_p50_ms: float  # batch 1
    latency_p99_ms: float
    throughput_rows_s: float  # batch 64: 64 / the median call's time
    peak_memory_bytes: int | None  # see the module's docstring; None where not measured
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    source: Measurement
    candidate: Measurement

    @property
    def size_ratio(self) -> float:
        return self.candidate.file_bytes / self.source.file_bytes

    @property
    def latency_ratio(self) -> float:
        return self.candidate.latency_p50_ms / self.source.latency_p50_ms

    @property
    def throughput_ratio(self) -> float:
        return self.candidate.throughput_rows_s / self.source.throughput_rows_s

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source.to_dict(), "candidate": self.candidate.to_dict(),
                "size_ratio": self.size_ratio, "latency_ratio": self.latency_ratio,
                "throughput_ratio": self.throughput_ratio}


# A tree ensemble's learnt numbers are node attributes, not tensors: its split thresholds
# and leaf values (ai.onnx.ml TreeEnsemble* of every opset).
TREE_NUMBERS = {"nodes_values", "nodes_values_as_tensor", "class_weights",
                "class_weights_as_tensor", "target_weights", "target_weights_as_tensor",
                "nodes_splits", "leaf_weights"}


def parameters(onnx_bytes: bytes) -> int:
    """Learnt numbers of the graph: its stored tensors (initializers, Constant values) and a
    tree ensemble's thresholds and leaf values."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    tensors = list(model.graph.initializer)
    tensors += [a.t for n in model.graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value"]
    trees = sum(len(a.floats) + (math.prod(a.t.dims) if a.HasField("t") else 0)
                for n in model.graph.node if n.op_type.startswith("TreeEnsemble")
                for a in n.attribute if a.name in TREE_NUMBERS)
    return sum(math.prod(t.dims) for t in tensors) + trees


def _field(spec: Any, key: str) -> Any:
    return spec[key] if isinstance(spec, Mapping) else getattr(spec, key)


def _feeds(inputs: Sequence[Any], sample: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exactly :data:`BATCH` rows of each input (the sample's rows repeated if fewer)."""
    feed = {}
    for spec in inputs:
        name, datatype = _field(spec, "name"), _field(spec, "datatype")
        if name not in sample:
            raise InputError(f"the measuring sample has no tensor {name!r}")
        if datatype not in DTYPES:
            raise InputError(f"input {name!r} is {datatype}: the lab measures numeric "
                             "tensors only")
        x = np.asarray(sample[name])
        if x.ndim == 0 or len(x) == 0:
            raise InputError(f"the measuring sample's {name!r} has no rows")
        rows = np.resize(x, (BATCH, *x.shape[1:])) if len(x) < BATCH else x[:BATCH]
        feed[name] = np.ascontiguousarray(rows, dtype=DTYPES[datatype])
    return feed


class _Timed:
    """One model's session and its per-call times."""

    def __init__(self, onnx_bytes: bytes, feed: dict[str, np.ndarray], threads: int) -> None:
        import onnxruntime as ort

        from studio.core.predict import session_options

        try:
            self.session = ort.InferenceSession(onnx_bytes, session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidGraph types
            raise InputError(f"ONNX Runtime cannot load the model: {e}") from None
        self.big = feed
        self.one = {k: v[:1] for k, v in feed.items()}
        self.latencies: list[float] = []
        self.batches: list[float] = []

    def round(self, keep: bool) -> None:
        run, clock = self.session.run, time.perf_counter
        latencies, batches = [], []
        for _ in range(LATENCY_CALLS):
            start = clock()
            run(None, self.one)
            latencies.append(clock() - start)
        for _ in range(THROUGHPUT_CALLS):
            start = clock()
            run(None, self.big)
            batches.append(clock() - start)
        if keep:
            self.latencies += latencies
            self.batches += batches


def _timings(models: Sequence[bytes], feed: dict[str, np.ndarray], threads: int,
             repeats: int) -> list[tuple[float, float, float]]:
    """(p50 ms, p99 ms, rows/s) of each model, their rounds interleaved: the order flips
    every round (A B, B A, ...) so neither always runs on a cache the other warmed."""
    timed = [_Timed(m, feed, threads) for m in models]
    for r in range(WARMUP_ROUNDS + repeats):
        order = timed if r % 2 == 0 else timed[::-1]
        for t in order:
            t.round(keep=r >= WARMUP_ROUNDS)
    out = []
    for t in timed:
        lat = np.asarray(t.latencies) * 1000
        out.append((float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                    BATCH / statistics.median(t.batches)))
    return out


_MEMORY_CHILD = r"""
import json, sys
import numpy as np
import onnxruntime as ort
from studio.core.predict import session_options

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

model, sample, threads, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with np.load(sample, allow_pickle=False) as npz:
    feed = {k: npz[k] for k in npz.files}
# The peak so far (imports) is reset where the kernel allows, so the growth measured is
# the session's alone; else the old peak can only make the figure larger, never smaller.
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
before = status("VmRSS")
session = ort.InferenceSession(model, session_options(threads),
                               providers=["CPUExecutionProvider"])
for _ in range(calls):
    session.run(None, feed)
print(json.dumps({"peak": status("VmHWM") - before}))
"""


def peak_memory(onnx_bytes: bytes, feed: Mapping[str, np.ndarray], threads: int = 1,
                calls: int = 3) -> int | None:
    """Bytes a fresh process's peak resident set grows by while it creates the session and
    runs ``feed`` ``calls`` times; None where ``/proc`` is missing or the child fails."""
    if not Path("/proc/self/status").exists():
        return None
    with tempfile.TemporaryDirectory(prefix="studio-measure-") as tmp:
        model, sample = Path(tmp, "model.onnx"), Path(tmp, "sample.npz")
        model.write_bytes(onnx_bytes)
        np.savez(sample, **feed)
        root = Path(__file__).resolve().parents[3]
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(model), str(sample), str(threads),
             str(calls)],
            capture_output=True, text=True, timeout=300, cwd=root,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        return None
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak"])


def _measurements(models: Sequence[bytes], inputs: Sequence[Any],
                  sample: Mapping[str, np.ndarray], threads: int, repeats: int,
                  memory: bool) -> list[Measurement]:
    if repeats < 1:
        raise InputError("repeats must be at least 1")
    feed = _feeds(inputs, sample)
    times = _timings(models, feed, threads, repeats)
    return [Measurement(
        file_bytes=len(m), parameters=parameters(m), latency_p50_ms=p50, latency_p99_ms=p99,
        throughput_rows_s=rows, threads=threads,
        peak_memory_bytes=peak_memory(m, feed, threads) if memory else None)
        for m, (p50, p99, rows) in zip(models, times, strict=True)]


def measure(onnx_bytes: bytes, inputs: Sequence[Any], sample: Mapping[str, np.ndarray],
            threads: int = 1, repeats: int = 20, memory: bool = True) -> Measurement:
    """One model measured: ``inputs`` are its tensors (TensorSpecs or their dicts),
    ``sample`` preprocessed rows by input name (repeated to fill a batch of 64 if fewer);
    ``repeats`` rounds of 50 batch-1 and 4 batch-64 calls follow 2 warm-up rounds."""
    return _measurements([onnx_bytes], inputs, sample, threads, repeats, memory)[0]


def measure_pair(source: bytes, candidate: bytes, inputs: Sequence[Any],
                 sample: Mapping[str, np.ndarray], threads: int = 1, repeats: int = 20,
                 memory: bool = True) -> Pair:
    """A source and its candidate (same inputs) measured in one interleaved run."""
    a, b = _measurements([source, candidate], inputs, sample, threads, repeats, memory)
    return Pair(a, b)
