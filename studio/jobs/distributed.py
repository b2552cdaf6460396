"""A training job over several processes: ``torch.distributed.run`` (torchrun) starts the
same trainer (:mod:`studio.jobs.worker`) in each, DistributedDataParallel joins them (gloo
on CPUs, NCCL on GPUs), and only the first process (rank 0) writes to the store and emits
events. This job process relays those events, so the CLI, the GUI and the job's record see a
distributed run as any other. A Stop is a file every process looks for at each step (they
agree through a collective, so all stop at the same one).

Several machines: the same ``studio train … --nnodes M --rdzv-endpoint HOST:PORT`` on each,
each with the dataset imported (the same snapshot); the machine whose process gets rank 0
registers the version.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from studio.core.errors import Abandoned, Cancelled, InputError, StudioError
from studio.core.events import Done, Emit, Failed, parse_event
from studio.core.workspace import Workspace

STOP_POLL_S = 0.2


def command(ws: Workspace, spec: dict[str, Any], job_id: str, stop_file: str) -> list[str]:
    d = spec["distributed"]
    cmd = [sys.executable, "-m", "torch.distributed.run",
           f"--nproc-per-node={int(d.get('nproc_per_node', 1))}",
           f"--nnodes={int(d.get('nnodes', 1))}"]
    if d.get("rdzv_endpoint"):
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={d['rdzv_endpoint']}",
                f"--rdzv-id={d.get('rdzv_id') or 'studio'}"]
    else:
        cmd += ["--standalone"]  # one machine: a free port of its own
    return [*cmd, "-m", "studio.jobs.worker", json.dumps(spec), "--job", job_id,
            "--home", str(ws.root), "--stop-file", stop_file]


def launch(ws: Workspace, spec: dict[str, Any], emit: Emit, should_stop: Callable[[], bool],
           job_id: str) -> dict[str, Any]:
    stop_file = str(ws.tmp / f"{job_id}.stop")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(stop_file)
    proc = subprocess.Popen(command(ws, spec, job_id, stop_file), stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                            errors="replace", bufsize=1, start_new_session=True)
    abandoned = threading.Event()
    over = threading.Event()

    def watch() -> None:
        while not over.wait(STOP_POLL_S):
            try:
                stopping = should_stop()
            except Abandoned:
                abandoned.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                return
            if stopping:
                open(stop_file, "a").close()
                return

    threading.Thread(target=watch, daemon=True).start()
    final: Done | Failed | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = parse_event(line)
            if isinstance(event, Done | Failed):
                final = event
            elif event is not None:
                emit(event)
        code = proc.wait()
    finally:
        over.set()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stop_file)
    if abandoned.is_set():
        raise Abandoned("the process that started it went away: nothing was kept")
    if isinstance(final, Done):
        return final.result
    if isinstance(final, Failed):
        if final.cancelled:
            raise Cancelled(final.error)
        if final.user_error:
            raise InputError(final.error)
        raise StudioError(final.error)
    raise StudioError(f"the distributed run ended with exit code {code} before a result "
                      "(its processes' errors are in the log above)")
