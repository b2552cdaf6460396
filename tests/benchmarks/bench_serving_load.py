"""`studio serve` under load, side by side with an HTTP floor, a naive server and bare ORT.

    python tests/benchmarks/bench_serving_load.py [--quick] [--profile]

Every server runs as its own process on 127.0.0.1 port 0 and the load comes from another
(wrk when on PATH, else load_gen's asyncio client); with two cores or more the servers and
the in-process ORT run get one core and the load another. The sides are run in turn, round
after round (A B C, B C A, ...), so the machine's noise hits them alike; a ratio is the
median of the rounds' own ratios. Targets (PASS/MISS per line):

- penguins, one row per V2 JSON request, 64 connections: >= 1.0x the HTTP floor's requests/s
  (a Starlette endpoint answering a constant body on the same uvicorn settings) and >= 5x a
  naive FastAPI + pydantic + ORT server (one session.run per request);
- an MLP with three hidden layers of 1024 (an ONNX graph built here, imported as a version),
  one row per request, 64 connections: rows/s >= 0.6x in-process ORT at batch 32 with the
  server's session options; p99 printed;
- one connection: p50 latency within 0.1 ms of the floor's.

--profile then shows where a request's time goes in our server at 64 connections, beside
the floor's (load_profile.py: cProfile through a hook that exists only in load_servers.py,
perf by library when perf is on PATH, and the request timed section by section).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from load_procs import ENV, Proc, bare_ort, infer_url, load, load_on, pick_cores, post, start, stop
from load_profile import profile

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "penguins.csv"
sys.path.insert(0, str(ROOT))  # this checkout's studio, not an installed one
MLP_FEATURES, MLP_HIDDEN, MLP_LAYERS, MLP_CLASSES = 32, 1024, 3, 10


# -- models ----------------------------------------------------------------------------------


def studio(home: str, *args: str, timeout: float = 600) -> dict:
    done = subprocess.run([sys.executable, "-m", "studio", "--home", home, *args, "--json"],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=ENV)
    if done.returncode != 0:
        raise SystemExit(f"studio {' '.join(args)} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def mlp_onnx(path: Path) -> None:
    """Three hidden layers of 1024 (ReLU), softmax over ten classes; He-initialised weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    widths = [MLP_FEATURES, *[MLP_HIDDEN] * MLP_LAYERS, MLP_CLASSES]
    nodes, weights, last = [], [], "input"
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        w = (rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"),
                    numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [last, f"w{i}", f"b{i}"], [f"z{i}"]))
        last = f"z{i}"
        if b != MLP_CLASSES:
            nodes.append(helper.make_node("Relu", [last], [f"h{i}"]))
            last = f"h{i}"
    nodes.append(helper.make_node("Softmax", [last], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        nodes, "mlp1024",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", MLP_FEATURES])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                       ["batch", MLP_CLASSES])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="bench_serving_load")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def prepare(home: str, work: Path) -> dict[str, Any]:
    """Train penguins (the linear family, so the same graph is served every time), import
    the MLP; the penguins graph is copied out for the naive server."""
    from studio.core import registry
    from studio.core.workspace import Workspace

    studio(home, "data", "import", str(SAMPLE))
    studio(home, "train", "penguins", "--target", "species", "--family", "linear",
           "--epochs", "5")
    mlp_onnx(work / "mlp1024.onnx")
    studio(home, "models", "import", str(work / "mlp1024.onnx"), "--name", "mlp1024")
    ws = Workspace.open(home)
    try:
        version = registry.get_version(ws, "penguins:1")
        (work / "penguins.onnx").write_bytes(registry.read_file(ws, version, "model.onnx"))
        n_features = version.manifest.inputs[0].shape[1]
    finally:
        ws.db.close()
    rng = np.random.default_rng(1)
    bodies = {}
    for name, n in (("penguins", n_features), ("mlp1024", MLP_FEATURES)):
        row = [round(float(v), 4) for v in rng.standard_normal(n)]
        bodies[name] = work / f"{name}.json"
        bodies[name].write_bytes(json.dumps({"inputs": [
            {"name": "input", "shape": [1, n], "datatype": "FP32", "data": row}]}).encode())
    return bodies


# -- the comparison --------------------------------------------------------------------------


def rotated(items: list, r: int) -> list:
    return items[r % len(items):] + items[:r % len(items)]


def compare(procs: dict[str, Proc], bodies: dict[str, Path], work: Path, rounds: int,
            seconds: float, cores: tuple[int | None, int | None], no_wrk: bool) -> list[bool]:
    server_core, load_core = cores
    runs: dict[str, list[dict]] = {}

    def side(key: str, fn: Callable[[], dict]) -> Callable[[], None]:
        return lambda: runs.setdefault(key, []).append(fn())

    c64 = [side(f"{n}_c64", lambda p=p: load_on(p, "penguins", bodies["penguins"], 64,
                                                seconds, load_core, no_wrk))
           for n, p in procs.items()]
    mlp = [side("studio_mlp", lambda: load_on(procs["studio"], "mlp1024", bodies["mlp1024"],
                                              64, seconds, load_core, no_wrk)),
           side("ort_batch32", lambda: bare_ort(work / "mlp1024.onnx", 32, seconds,
                                                server_core)),
           side("ort_batch1", lambda: bare_ort(work / "mlp1024.onnx", 1, seconds,
                                               server_core))]  # no batching: for reference
    c1 = [side(f"{n}_c1", lambda p=procs[n]: load_on(p, "penguins", bodies["penguins"], 1,
                                                     seconds, load_core, no_wrk))
          for n in ("studio", "floor")]
    for r in range(rounds):
        for group in (c64, mlp, c1):
            for run in rotated(group, r):
                run()
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)

    def med(key: str, field_: str) -> float:
        return statistics.median(d[field_] for d in runs[key])

    def ratio(a: str, fa: str, b: str, fb: str) -> float:
        return statistics.median(x[fa] / y[fb] for x, y in zip(runs[a], runs[b], strict=True))

    generator = runs["studio_c64"][0]["generator"]
    where = (f"server core {server_core}, load core {load_core} (of "
             f"{sorted(os.sched_getaffinity(0))})" if server_core is not None
             else "one core: servers and load not pinned apart")
    print(f"load generator: {generator}; {where}; {rounds} rounds of {seconds:g} s per side, "
          "medians")
    for key in sorted(runs):
        if key.startswith("ort_batch"):
            print(f"  {key:12s} rows/s {med(key, 'rows_per_s'):>7,.0f}  "
                  f"CPU/row {med(key, 'cpu_us_per_row'):6.1f} us  "
                  f"a batch in {med(key, 'batch_ms'):.3f} ms (bare ORT, server core)")
        else:
            print(f"  {key:12s} req/s {med(key, 'requests_per_s'):>8,.0f}  "
                  f"CPU/req {med(key, 'cpu_us_per_req'):6.1f} us  "
                  f"p50 {med(key, 'p50_us') / 1e3:.3f} ms  p90 {med(key, 'p90_us') / 1e3:.3f} ms"
                  f"  p99 {med(key, 'p99_us') / 1e3:.3f} ms")
    checks = []

    def check(text: str, ok: bool) -> None:
        checks.append(ok)
        print(f"{'PASS' if ok else 'MISS'}  {text}")

    def by_cpu(a: str, b: str, fb: str = "cpu_us_per_req") -> str:
        return f"[by server CPU/request: {ratio(b, fb, a, 'cpu_us_per_req'):.2f}x]"

    floor = ratio("studio_c64", "requests_per_s", "floor_c64", "requests_per_s")
    check(f"penguins c=64: studio / HTTP floor throughput = {floor:.2f}x (target >= 1.0x) "
          + by_cpu("studio_c64", "floor_c64"), floor >= 1.0)
    naive = ratio("studio_c64", "requests_per_s", "naive_c64", "requests_per_s")
    check(f"penguins c=64: studio / naive FastAPI+pydantic+ORT = {naive:.2f}x (target >= 5x) "
          + by_cpu("studio_c64", "naive_c64"), naive >= 5.0)
    rows = ratio("studio_mlp", "requests_per_s", "ort_batch32", "rows_per_s")
    check(f"mlp 3x1024 c=64: studio rows/s / in-process ORT batch 32 = {rows:.2f}x "
          f"(target >= 0.6x) {by_cpu('studio_mlp', 'ort_batch32', 'cpu_us_per_row')}; "
          f"studio p99 {med('studio_mlp', 'p99_us') / 1e3:.2f} ms", rows >= 0.6)
    gap = statistics.median(x["p50_us"] - y["p50_us"]
                            for x, y in zip(runs["studio_c1"], runs["floor_c1"], strict=True))
    check(f"penguins c=1: studio p50 - floor p50 = {gap / 1e3:+.3f} ms (target <= 0.1 ms)",
          gap <= 100)
    return checks


# -- the profile -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s (under a minute)")
    parser.add_argument("--rounds", type=int, help="default 5 (2 with --quick)")
    parser.add_argument("--seconds", type=float, help="per side and round (default 4; 1 quick; "
                        "wrk takes whole seconds)")
    parser.add_argument("--profile", action="store_true",
                        help="then profile our server under c=64 and time its sections")
    parser.add_argument("--keep-profile", metavar="FILE", help="with --profile: keep the "
                        "cProfile stats there")
    parser.add_argument("--no-wrk", action="store_true", help="the asyncio client even if "
                        "wrk is on PATH")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (1.0 if args.quick else 4.0)
    cores = pick_cores()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        home, work = str(Path(tmp) / "home"), Path(tmp)
        bodies = prepare(home, work)
        procs: dict[str, Proc] = {}
        try:
            procs["studio"] = start("studio", ["studio", home, "penguins:1", "mlp1024:1"],
                                    cores[0])
            status, answer = post(infer_url(procs["studio"], "penguins"),
                                  bodies["penguins"].read_bytes())
            assert status == 200 and b'"outputs"' in answer, answer
            (work / "floor.json").write_bytes(answer)  # the floor answers what we answer
            procs["floor"] = start("floor", ["floor", str(work / "floor.json")], cores[0])
            procs["naive"] = start("naive", ["naive", str(work / "penguins.onnx")], cores[0])
            for p in procs.values():
                status, answer = post(infer_url(p, "penguins"), bodies["penguins"].read_bytes())
                assert status == 200 and b'"outputs"' in answer, (p.name, answer)
                load(infer_url(p, "penguins"), bodies["penguins"], 64, 1, cores[1],
                     args.no_wrk)  # warm-up
            status, answer = post(infer_url(procs["studio"], "mlp1024"),
                                  bodies["mlp1024"].read_bytes())
            assert status == 200 and b'"probabilities"' in answer, answer
            checks = compare(procs, bodies, work, rounds, seconds, cores, args.no_wrk)
        finally:
            for p in procs.values():
                stop(p)
        if args.profile:
            profile(home, bodies, max(seconds, 3.0), cores, args.no_wrk, work,
                    args.keep_profile)
    print(f"{sum(checks)}/{len(checks)} targets met; {time.monotonic() - started:.0f} s "
          "(figures on a shared machine are noisy: compare ratios, not absolute numbers)")


if __name__ == "__main__":
    main()
