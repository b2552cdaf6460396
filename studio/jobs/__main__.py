"""The child side of a job: ``python -m studio.jobs KIND SPEC_JSON --job ID --home DIR``.

Events go to the real stdout as JSON lines (anything else a library prints is sent to
stderr); metric rows and the job's verdict go into the store. A line ``stop`` on stdin, or
stdin closing because the parent died, ends it at its next step without keeping anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO

# Before torch or LightGBM loads their OpenMP runtime: threads that wait sleep rather than
# spin, so a job sharing its cores (with the GUI, or torch and LightGBM with each other)
# does not slow down tenfold.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from studio.core.errors import Abandoned, Cancelled, InputError, IntegrityError, StudioError
from studio.core.events import Done, Emit, Event, Failed, Metric, Progress, Started
from studio.core.workspace import Workspace
from studio.jobs import records, transfer

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_CANCELLED = 0, 1, 2, 3


def _train(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
           job_id: str) -> dict[str, Any]:
    from studio.core.training.spec import TrainSpec

    checked = TrainSpec.from_dict(spec)
    if checked.distributed:
        from studio.jobs.distributed import launch

        return launch(ws, checked.to_dict(), emit, stop, job_id)
    from studio.core.training.pipeline import run

    return run(ws, checked, emit, stop, job_id=job_id)


def _import(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
            job_id: str) -> dict[str, Any]:
    from pathlib import Path

    from studio.core.datasets.catalog import import_dataset

    emit(Started(job_id, "import", "cpu"))
    info = import_dataset(ws, Path(spec["path"]), spec.get("name"), emit, stop,
                          sheet=spec.get("sheet"))
    return info.import_report()


def _profile(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
             job_id: str) -> dict[str, Any]:
    from studio.core.datasets.catalog import dataset_by_digest, dataset_profile, get_dataset

    emit(Started(job_id, "profile", "cpu"))
    # A profile belongs to the content: found by its digest, the dataset may be renamed.
    info = (dataset_by_digest(ws, spec["digest"]) if spec.get("digest")
            else get_dataset(ws, spec["dataset"]))
    profile = dataset_profile(ws, info, emit)
    emit(Progress("profile", len(profile), len(profile), "done"))
    return {"dataset": info.name, "columns": len(profile)}


NICE = 5


def _tune(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
          job_id: str) -> dict[str, Any]:
    from studio.core.training import tune

    emit(Started(job_id, "tune", spec.get("device") or "auto"))
    return tune.run(ws, tune.TuneSpec.from_dict(spec), emit, stop, records.TrialBook(ws), job_id)

def _compress(ws: Workspace, spec: dict[str, Any], emit: Emit, stop: Callable[[], bool],
              job_id: str) -> dict[str, Any]:
    from studio.core.compress import lab

    return lab.run(ws, str(spec["source"]), lab.parse_steps(spec.get("steps") or []), emit,
                   stop, job_id=job_id, chain=bool(spec.get("chain")),
                   dataset=spec.get("dataset") or None, threads=int(spec.get("threads") or 1),
                   repeats=int(spec.get("repeats") or lab.REPEATS))


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "train": _train, "tune": _tune, "import": _import, "profile": _profile,
    "compress": _compress,
    **transfer.JOBS}


class _Emitter:
    """Writes events to stdout; records the device a job announces and buffers metric rows."""

    def __init__(self, ws: Workspace, job_id: str, out: TextIO) -> None:
        self.ws, self.job_id, self.out = ws, job_id, out
        self.lock = threading.Lock()
        self.pending: list[Metric] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started) and event.device:
            records.set_device(self.ws, self.job_id, event.device)
        elif isinstance(event, Metric):
            self.pending.append(event)
        else:
            self.flush()
        with self.lock:
            try:
                self.out.write(event.to_json() + "\n")
                self.out.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the parent is gone: the store still gets the verdict

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        records.add_metrics(self.ws, self.job_id, batch)


def _watch_stdin(stop: threading.Event, abandoned: threading.Event) -> None:
    """``stop`` on stdin is a person's Stop: the work ends at its next step and keeps what
    it has. stdin closing without it means the parent is gone (a killed terminal, a crashed
    app): that is no Stop, and nothing half-done is kept."""
    for line in sys.stdin:
        if line.strip() == "stop":
            stop.set()
            return
    abandoned.set()
    stop.set()


def _should_stop(stop: threading.Event, abandoned: threading.Event) -> Callable[[], bool]:
    def should_stop() -> bool:
        if abandoned.is_set():
            raise Abandoned("the process that started it went away (a closed terminal or a "
                            "killed app): nothing was kept")
        return stop.is_set()

    return should_stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.jobs")
    parser.add_argument("kind", choices=sorted(JOBS))
    parser.add_argument("spec", help="the job's spec as a JSON object")
    parser.add_argument("--job", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--nice", action="store_true",
                        help="run at a lower CPU priority (a GUI shares the machine)")
    args = parser.parse_args(argv)
    if args.nice and hasattr(os, "nice"):
        # On a machine with few cores the GUI thread would otherwise wait behind this
        # job's threads for a time slice: the scheduler now lets it in first.
        os.nice(NICE)

    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout = sys.stderr  # library chatter must not corrupt the event stream
    ws = Workspace.open(args.home)
    emit = _Emitter(ws, args.job, events_out)
    stop, abandoned = threading.Event(), threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop, abandoned), daemon=True).start()
    # A service manager stops a whole group with SIGTERM: the job's own session does not
    # spare it. Like the CLI's, it is a Stop: the work ends at its next step, keeping.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not records.mark_running(ws, args.job, os.getpid()):
        emit(Failed("the job was ended before it started (its starter was gone)"))
        return EXIT_INTERNAL
    try:
        result = JOBS[args.kind](ws, json.loads(args.spec), emit,
                                 _should_stop(stop, abandoned), args.job)
    except Abandoned as exc:
        return _fail(ws, emit, args.job, str(exc), "interrupted", EXIT_CANCELLED)
    except Cancelled as exc:
        return _fail(ws, emit, args.job, str(exc), "cancelled", EXIT_CANCELLED)
    except InputError as exc:
        return _fail(ws, emit, args.job, str(exc), "failed", EXIT_INPUT)
    except IntegrityError as exc:  # damaged stored files: the message names them, no trace
        return _fail(ws, emit, args.job, str(exc), "failed", EXIT_INTERNAL)
    except (StudioError, Exception) as exc:
        with contextlib.suppress(OSError, ValueError):
            traceback.print_exc(file=sys.stderr)
        return _fail(ws, emit, args.job, f"{type(exc).__name__}: {exc}", "failed", EXIT_INTERNAL)
    emit.flush()
    records.finish(ws, args.job, "done", result=result)
    emit(Done(result))
    return EXIT_OK


def _fail(ws: Workspace, emit: _Emitter, job_id: str, message: str, status: str,
          code: int) -> int:
    emit.flush()
    records.finish(ws, job_id, status, error=message)
    emit(Failed(message, user_error=code == EXIT_INPUT, cancelled=code == EXIT_CANCELLED))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
