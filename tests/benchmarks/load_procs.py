"""The load benchmark's plumbing: servers started on their own cores, load from another
process, and each server's CPU per request read from /proc."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]), "STUDIO_NO_NOTES": "1"}
START_TIMEOUT_S = 60


def pick_cores() -> tuple[int | None, int | None]:
    """(server core, load core): different ones when this process may use two or more."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return cores[-1], cores[0]


def pinned(core: int | None) -> Callable[[], None] | None:
    """Set in the child before it execs, so every thread it makes (ORT's pool) inherits it."""
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen
    url: str = ""
    lines: queue.Queue = field(default_factory=queue.Queue)


def start(name: str, args: list[str], core: int | None, env: dict | None = None) -> Proc:
    """A server from load_servers.py; returns once it printed its URL and answers."""
    proc = subprocess.Popen([sys.executable, str(HERE / "load_servers.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, cwd=ROOT, env=env or ENV,
                            preexec_fn=pinned(core))
    p = Proc(name, proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            p.lines.put(line)
        p.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    text, deadline = "", time.monotonic() + START_TIMEOUT_S
    try:
        while not p.url:
            line = p.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                proc.wait()
                raise SystemExit(f"{name} exited ({proc.returncode}): {proc.stderr.read()}")
            text += line
            try:
                p.url = json.loads(text)["url"]
            except ValueError:
                continue
        host, port = p.url.rsplit("/", 1)[-1].rsplit(":", 1)
        while True:  # the URL is announced before uvicorn listens on it
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{name} never listened: {proc.stderr.read()}") from None
                time.sleep(0.05)
    except BaseException:
        stop(p)
        raise
    return p


def stop(p: Proc) -> None:
    """Ctrl-C (the profile is written on the way out), then kill if it does not end."""
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGINT)
        try:
            p.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=15)
    for stream in (p.proc.stdout, p.proc.stderr):
        if stream is not None:
            stream.close()


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy from env


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with DIRECT.open(request, timeout=10) as response:
        return response.status, response.read()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (Linux /proc; 10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def infer_url(p: Proc, model: str) -> str:
    return f"{p.url}/v2/models/{model}/infer"


def load_on(p: Proc, model: str, body: Path, connections: int, seconds: float,
            core: int | None, no_wrk: bool) -> dict:
    """Load one server; also its CPU per request, which the other processes sharing the
    machine disturb far less than they do requests per second."""
    before = cpu_seconds(p.proc.pid)
    doc = load(infer_url(p, model), body, connections, seconds, core, no_wrk)
    doc["cpu_us_per_req"] = (cpu_seconds(p.proc.pid) - before) / doc["requests"] * 1e6
    return doc


def load(url: str, body: Path, connections: int, seconds: float, core: int | None,
         no_wrk: bool) -> dict:
    args = [sys.executable, str(HERE / "load_gen.py"), url, str(body),
            "--connections", str(connections), "--seconds", str(seconds)]
    if no_wrk:
        args.append("--no-wrk")
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60,
                          env=ENV, preexec_fn=pinned(core))
    if done.returncode != 0:
        raise SystemExit(f"load failed: {done.stderr.strip()}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    if doc["errors"]:
        raise SystemExit(f"{doc['errors']} failed requests against {url}: {doc}")
    return doc


def bare_ort(model: Path, batch: int, seconds: float, core: int | None) -> dict:
    done = subprocess.run([sys.executable, str(HERE / "load_servers.py"), "ort", str(model),
                           "--batch", str(batch), "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 60, env=ENV,
                          cwd=ROOT, preexec_fn=pinned(core))
    if done.returncode != 0:
        raise SystemExit(f"in-process ORT failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])
