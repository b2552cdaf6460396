"""Where a request's time goes in `studio serve` under load, beside the HTTP floor's.

Three views, each with its own bias: cProfile on the event loop thread's CPU time (sees
Python functions, inflates them), perf by shared library when perf is on PATH (sees C and
the kernel, not which Python code), and the same request timed section by section in this
process with no sockets (hot caches, so lower than under load).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from load_procs import ENV, infer_url, load, load_on, start, stop

CATEGORIES = [  # (name, test on (file, function)); the first that matches wins
    ("ORT session.run", lambda f, fn: "onnxruntime" in fn or "onnxruntime" in f),
    ("studio Predictor wrapper", lambda f, fn: f.endswith(("core/predict.py",
                                                          "core/graph_model.py"))),
    ("JSON (orjson loads/dumps)", lambda f, fn: "orjson" in fn),
    ("tensor decode/encode (numpy)", lambda f, fn: "numpy" in f or "numpy" in fn
     or fn in ("decode_tensor", "encode_tensor")),
    ("dataplane (lookup, checks)", lambda f, fn: f.endswith(("serving/dataplane.py",
                                                             "serving/quick.py"))),
    ("studio front + lane (framing, admission, reply)",
     lambda f, fn: f.endswith(("serving/front.py", "serving/lane.py"))),
    ("batcher + metrics", lambda f, fn: f.endswith(("serving/batcher.py",
                                                   "serving/metrics.py",
                                                   "serving/window.py"))),
    ("studio app (guarded, read_body)", lambda f, fn: f.endswith("serving/app.py")),
    ("Starlette routing", lambda f, fn: f.endswith("starlette/routing.py")),
    ("Starlette Request/Response", lambda f, fn: "/starlette/" in f),
    ("uvicorn HTTP (httptools)", lambda f, fn: "/uvicorn/" in f or "httptools" in fn),
    ("event loop + socket I/O (uvloop, C)", lambda f, fn: "uvloop" in fn or "uvloop" in f
     or "/asyncio/" in f or "select.epoll" in fn or "socket" in fn),
    ("anyio / threads", lambda f, fn: "/anyio/" in f or "threading" in f),
]


def profiled_run(name: str, args: list[str], body: Path, seconds: float,
                 cores: tuple[int | None, int | None], no_wrk: bool, target: Path
                 ) -> tuple[dict, dict]:
    """One server under load with its profiler on for the measured run only."""
    import pstats

    server_core, load_core = cores
    p = start(name, args, server_core, {**ENV, "STUDIO_BENCH_PROFILE": str(target)})
    try:
        load(infer_url(p, "penguins"), body, 64, 1, load_core, no_wrk)  # warm-up
        p.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        doc = load(infer_url(p, "penguins"), body, 64, seconds, load_core, no_wrk)
        p.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(p)
    return doc, pstats.Stats(str(target)).stats  # type: ignore[attr-defined]


def categorize(stats: dict) -> tuple[dict[str, float], dict[str, list[tuple[float, str]]]]:
    """Own time per category. A builtin no category names (len, dict.get, a regex match)
    counts in its callers' categories, shared by the time spent in it from each."""

    def named(key: tuple) -> str | None:
        return next((n for n, test in CATEGORIES if test(key[0], key[2])), None)

    def home(key: tuple, depth: int = 0) -> str:
        callers = stats[key][4] if key in stats else {}
        if (name := named(key)) or key[0] != "~" or not callers or depth > 3:
            return name or "other"
        return home(max(callers, key=lambda c: callers[c][2]), depth + 1)

    totals: dict[str, float] = {}
    members: dict[str, list[tuple[float, str]]] = {}

    def add(name: str, tt: float, key: tuple) -> None:
        totals[name] = totals.get(name, 0.0) + tt
        members.setdefault(name, []).append((tt, f"{key[2]} ({Path(key[0]).name}:{key[1]})"))

    for key, (_, _, tt, _, callers) in stats.items():
        share = sum(c[2] for c in callers.values())
        if named(key) or key[0] != "~" or share <= 0:
            add(home(key), tt, key)
            continue
        for caller, c in callers.items():
            add(home(caller), tt * c[2] / share, key)
    return totals, members


LIBRARIES = [  # (name, test on the shared object's name); the first that matches wins
    ("Python interpreter (all Python code)", lambda d: d.startswith("libpython")),
    ("kernel (sockets, syscalls)", lambda d: "kernel" in d or d == "[vdso]"),
    ("ONNX Runtime (C++)", lambda d: "onnxruntime" in d),
    ("numpy (C)", lambda d: "multiarray" in d or "umath" in d or "numpy" in d),
    ("uvloop + asyncio (C)", lambda d: d.startswith(("loop.", "_asyncio"))),
    ("httptools parser (C)", lambda d: d.startswith(("parser.", "url_parser."))),
    ("orjson (Rust)", lambda d: d.startswith("orjson")),
    ("libc / libstdc++ (malloc, memcpy)", lambda d: d.startswith(("libc.", "libstdc++", "libm."))),
]


def perf_split(name: str, args: list[str], body: Path, seconds: float,
               cores: tuple[int | None, int | None], no_wrk: bool, work: Path
               ) -> tuple[dict, dict[str, float]] | None:
    """CPU per request under c=64 and perf's share of samples per library, for one server;
    None when perf cannot record here."""
    server_core, load_core = cores
    p = start(name, args, server_core)
    data = work / f"{name}.perf"
    try:
        load(infer_url(p, "penguins"), body, 64, 1, load_core, no_wrk)  # warm-up
        recorder = subprocess.Popen(
            ["perf", "record", "-F", "1999", "-p", str(p.proc.pid), "-o", str(data), "--",
             "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        doc = load_on(p, "penguins", body, 64, seconds, load_core, no_wrk)
        _, err = recorder.communicate(timeout=seconds + 30)
    finally:
        stop(p)
    if recorder.returncode != 0 or not data.exists():
        print(f"  (perf could not record: {err.strip()[:200]})")
        return None
    report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort",
                             "dso", "-g", "none", "--stdio"], capture_output=True, text=True,
                            timeout=120)
    shares: dict[str, float] = {}
    for line in report.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith("%") and not line.startswith("#"):
            lib = next((n for n, test in LIBRARIES if test(parts[1])), "other")
            shares[lib] = shares.get(lib, 0.0) + float(parts[0][:-1]) / 100
    return doc, shares


def perf_view(home: str, body: Path, seconds: float, cores: tuple[int | None, int | None],
              no_wrk: bool, work: Path) -> None:
    if shutil.which("perf") is None:
        print("\n(perf is not on PATH: no split by library)")
        return
    sides = {"ours": ["studio", home, "penguins:1"], "floor": ["floor", str(work / "floor.json")],
             "raw ASGI": ["bare", str(work / "floor.json")]}
    got = {}
    for name, args in sides.items():
        result = perf_split(name.replace(" ", "-"), args, body, seconds, cores, no_wrk, work)
        if result is None:
            return
        got[name] = result
    print("\nperf under c=64, penguins: server CPU microseconds per request, split by where "
          "perf found it (every thread; 'raw ASGI' is the floor's constant answer without "
          "Starlette, a bare ASGI callable on the same uvicorn)")
    print(f"  {'':38s}" + "".join(f"{n:>10s}" for n in got))
    for lib in [n for n, _ in LIBRARIES] + ["other"]:
        print(f"  {lib:38s}" + "".join(f"{doc['cpu_us_per_req'] * shares.get(lib, 0.0):10.1f}"
                                       for doc, shares in got.values()))
    print(f"  {'total (CPU/request)':38s}" + "".join(
        f"{doc['cpu_us_per_req']:10.1f}" for doc, _ in got.values()))
    print(f"  {'requests/s while recorded':38s}" + "".join(
        f"{doc['requests_per_s']:10,.0f}" for doc, _ in got.values()))


def profile(home: str, bodies: dict[str, Path], seconds: float,
            cores: tuple[int | None, int | None], no_wrk: bool, work: Path,
            keep: str | None) -> None:
    body = bodies["penguins"]
    ours, ours_stats = profiled_run("studio-profiled", ["studio", home, "penguins:1"], body,
                                    seconds, cores, no_wrk, work / "studio.prof")
    floor, floor_stats = profiled_run("floor-profiled", ["floor", str(work / "floor.json")],
                                      body, seconds, cores, no_wrk, work / "floor.prof")
    n_ours = next((nc for (f, _, fn), (_, nc, *_r) in ours_stats.items()  # once a request,
                   if fn == "decode" and f.endswith("serving/dataplane.py")), 1)  # either path
    n_floor = next((nc for (f, _, fn), (_, nc, *_r) in floor_stats.items()
                    if fn == "endpoint" and f.endswith("load_servers.py")), 1)
    (t_ours, members), (t_floor, _) = categorize(ours_stats), categorize(floor_stats)
    print(f"\nprofile under c=64, penguins, cProfile on the event loop thread's CPU time, "
          f"microseconds per request (own time; cProfile inflates Python calls more than C, "
          f"and Cython code such as uvloop's counts in its Python caller). Ours: {n_ours} "
          f"requests at {ours['requests_per_s']:,.0f}/s profiled; floor: {n_floor} at "
          f"{floor['requests_per_s']:,.0f}/s")
    print(f"  {'':36s} {'ours':>7s} {'floor':>7s}")
    for name in sorted(set(t_ours) | set(t_floor), key=lambda n: -t_ours.get(n, 0.0)):
        a, b = t_ours.get(name, 0.0) / n_ours * 1e6, t_floor.get(name, 0.0) / n_floor * 1e6
        print(f"  {name:36s} {a:7.1f} {b:7.1f}")
        for tt, where in sorted(members.get(name, []), reverse=True)[:3]:
            if tt / n_ours * 1e6 >= 2:
                print(f"      {tt / n_ours * 1e6:6.1f}  {where}")
    print(f"  {'total':36s} {sum(t_ours.values()) / n_ours * 1e6:7.1f} "
          f"{sum(t_floor.values()) / n_floor * 1e6:7.1f}")
    if keep:
        shutil.copyfile(work / "studio.prof", keep)
        print(f"  (our stats are in {keep}: python -m pstats {keep})")
    perf_view(home, body, seconds, cores, no_wrk, work)
    sections(home, body)


def sections(home: str, body_file: Path) -> None:
    """The same request timed piece by piece in this process, no profiler, no sockets."""
    import asyncio

    import orjson
    from bench_serving import call
    from load_servers import floor_app

    from studio.core.workspace import Workspace
    from studio.serving.app import JSONResponse, create_app
    from studio.serving.dataplane import ModelRepository, decode_tensor, encode_tensor

    body = body_file.read_bytes()
    repo = ModelRepository(Workspace.open(home), ["penguins:1"], threads=0)
    p = repo.get("penguins")
    specs = {s["name"]: s for s in p.inputs}
    doc = orjson.loads(body)
    tensors = {"input": decode_tensor(doc["inputs"][0], specs)}
    out = p.run(tensors)
    answer = repo.infer("penguins", None, doc)

    def timed(fn: Callable[[], Any], n: int = 3000) -> float:
        for _ in range(200):
            fn()
        t = time.thread_time()
        for _ in range(n):
            fn()
        return (time.thread_time() - t) / n * 1e6

    async def via_asgi(app: Any, n: int = 3000) -> float:
        for _ in range(200):
            await call(app, "/v2/models/penguins/infer", body)
        t = time.thread_time()
        for _ in range(n):
            await call(app, "/v2/models/penguins/infer", body)
        return (time.thread_time() - t) / n * 1e6

    print("sections, one request timed alone in this process, no sockets (thread CPU us):")
    rows = [
        ("orjson.loads(body)", timed(lambda: orjson.loads(body))),
        ("decode_tensor", timed(lambda: decode_tensor(doc["inputs"][0], specs))),
        ("ORT via Predictor.run", timed(lambda: p.run(tensors))),
        ("ORT session.run alone", timed(lambda: p.session.run(None, tensors))),
        ("encode_tensor", timed(lambda: encode_tensor("probabilities", out["probabilities"]))),
        ("JSONResponse(answer) (orjson.dumps)", timed(lambda: JSONResponse(answer))),
        ("repo.infer (parse..encode, no HTTP)", timed(lambda: repo.infer(
            "penguins", None, orjson.loads(body)))),
        ("our ASGI app, whole request", asyncio.run(via_asgi(create_app(repo)))),
        ("floor ASGI app, whole request", asyncio.run(via_asgi(floor_app(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY))))),
    ]
    for name, us in rows:
        print(f"  {name:38s} {us:8.1f}")
    repo.ws.db.close()
