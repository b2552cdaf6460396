"""int8 and fp16 against fp32 on a wide MLP, through the lab's own measuring path:

    python tests/benchmarks/bench_compress.py [--features 64] [--hidden 1024] [--layers 3]
                                              [--threads 1] [--repeats 20] [--raw]

The MLP is exported by torch as training exports it (Gemm layers, opset 17), its weights
random. Each compressed graph is measured against fp32 with ``measure_pair`` (interleaved
rounds); ``--raw`` also times plain ONNX Runtime sessions (default options) the same way,
to tell the measuring path's cost from the method's. The issue's targets for int8: batch-64
throughput ≥ 2.0× and batch-1 latency ≤ 0.7× fp32's.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import time

import numpy as np


def wide_mlp(features: int, hidden: int, layers: int, classes: int = 10) -> bytes:
    import torch

    torch.manual_seed(0)
    dims = [features] + [hidden] * layers
    mods: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(dims):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods, torch.nn.Linear(hidden, classes),
                                torch.nn.Softmax(dim=1)).eval()
    buf = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(2, features),), buf, input_names=["features"],
                      output_names=["probabilities"],
                      dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
                      opset_version=17, dynamo=False)
    return buf.getvalue()


def raw_ort(models: dict[str, bytes], x: np.ndarray, threads: int, repeats: int) -> None:
    """Plain sessions: default options except the thread count, rounds interleaved."""
    import onnxruntime as ort

    sessions = {}
    for name, m in models.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sessions[name] = ort.InferenceSession(m, opts, providers=["CPUExecutionProvider"])
    one, big = {"features": x[:1]}, {"features": x[:64]}
    lat: dict[str, list[float]] = {n: [] for n in sessions}
    thr: dict[str, list[float]] = {n: [] for n in sessions}
    for r in range(repeats + 2):
        for name, s in sessions.items() if r % 2 else reversed(sessions.items()):
            for feed, out, calls in ((one, lat, 50), (big, thr, 4)):
                for _ in range(calls):
                    start = time.perf_counter()
                    s.run(None, feed)
                    if r >= 2:
                        out[name].append(time.perf_counter() - start)
    base_l, base_t = statistics.median(lat["fp32"]), statistics.median(thr["fp32"])
    for name in sessions:
        if name != "fp32":
            print(f"  raw ORT {name:12s} throughput {base_t / statistics.median(thr[name]):5.2f}×"
                  f"   latency {statistics.median(lat[name]) / base_l:5.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--raw", action="store_true")
    args = parser.parse_args()

    from studio.core.compress.measure import measure_pair
    from studio.core.compress.quantize import fp16, int8_dynamic, int8_static

    fp32 = wide_mlp(args.features, args.hidden, args.layers)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, args.features)).astype(np.float32)
    inputs = [{"name": "features", "datatype": "FP32", "shape": [-1, args.features]}]
    models = {
        "fp32": fp32,
        "int8-dynamic": int8_dynamic(fp32),
        "int8-static": int8_static(fp32, {"features": x}),
        "fp16": fp16(fp32),
    }
    print(f"MLP {args.features}→{args.layers}×{args.hidden}→10, threads={args.threads}, "
          f"repeats={args.repeats}")
    for name, m in models.items():
        if name == "fp32":
            continue
        pair = measure_pair(fp32, m, inputs, {"features": x}, threads=args.threads,
                            repeats=args.repeats)
        s, c = pair.source, pair.candidate
        mem = ("" if s.peak_memory_bytes is None or c.peak_memory_bytes is None else
               f"   memory {c.peak_memory_bytes / 2**20:6.1f} MiB"
               f" (fp32 {s.peak_memory_bytes / 2**20:.1f})")
        print(f"{name:13s} size {pair.size_ratio:5.2f}×   throughput {pair.throughput_ratio:5.2f}×"
              f" ({c.throughput_rows_s:8.0f} vs {s.throughput_rows_s:8.0f} rows/s)"
              f"   latency p50 {pair.latency_ratio:5.2f}× ({c.latency_p50_ms:.3f} vs "
              f"{s.latency_p50_ms:.3f} ms, p99 {c.latency_p99_ms:.3f} vs "
              f"{s.latency_p99_ms:.3f}){mem}")
    if args.raw:
        raw_ort(models, x, args.threads, args.repeats)


if __name__ == "__main__":
    main()
