"""Start a job subprocess and read its events: one runner for the CLI and the GUI.

The CLI and the GUI call :meth:`JobRunner.poll` (never blocking) from a loop or a timer;
scripts and tests may iterate :meth:`JobRunner.events` (blocking). A child that dies without
a final event (killed, crashed) is turned into a ``Failed`` event here and its record is
marked failed, so the store stays consistent.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.core.events import Done, Event, Failed, is_terminal, parse_event
from studio.core.workspace import Workspace
from studio.jobs import records

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STDERR_TAIL = 20


class JobRunner:
    """``nice``: the job yields the CPU to an interactive process (the GUI) beside it."""

    def __init__(self, ws: Workspace, kind: str, spec: dict[str, Any],
                 nice: bool = False, env: dict[str, str] | None = None) -> None:
        self.ws, self.kind, self.spec, self.nice = ws, kind, spec, nice
        self.extra_env = dict(env or {})  # secrets (a Hub token): the spec is stored, this not
        self.job_id: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._kill_timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()
        self._grace_s: float | None = None
        self._stderr_done = threading.Event()
        self.final: Done | Failed | None = None

    def start(self) -> str:
        self.job_id = records.create_job(self.ws, self.kind, self.spec)
        env = {**os.environ, **self.extra_env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        # the working folder is not on the child's import path: a folder there named like a
        # library (a Triton repository exported as triton/, another studio/ checkout) would
        # shadow it; the package itself comes from PYTHONPATH
        env["PYTHONSAFEPATH"] = "1"
        cmd = [sys.executable, "-m", "studio.jobs", self.kind, json.dumps(self.spec),
               "--job", self.job_id, "--home", str(self.ws.root), *(["--nice"] * self.nice)]
        try:
            self.proc = self._spawn(cmd, env)
        except OSError as exc:  # no process: its queued row must not wait for one
            records.finish(self.ws, self.job_id, "failed", error=f"could not start: {exc}")
            raise
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        return self.job_id

    def _spawn(self, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
            # Its own session: a Ctrl-C in the terminal reaches the parent only, which then
            # asks the job to stop cleanly through stdin instead of killing it mid-step.
            start_new_session=os.name == "posix",
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            event = parse_event(line)
            if event is not None:
                self._queue.put(event)
                if self._kill_timer is not None:  # stopping, and still at work: more time
                    self._arm_kill_timer()
        self.proc.wait()
        self._stderr_done.wait(timeout=2)
        self._queue.put(None)  # end of stream

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip())
        self._stderr_done.set()

    def _accept(self, event: Event | None) -> Event | None:
        """Keep the verdict; at the end of a stream without one, make and record it."""
        if event is None:
            if self.final is not None:
                return None
            code = self.proc.returncode if self.proc else None
            how = f"was killed by signal {-code}" if code is not None and code < 0 \
                else f"exited with code {code}"
            tail = next((s for s in reversed(self._stderr) if s.strip()), "")
            message = f"the {self.kind} process {how}" + (f": {tail}" if tail else "")
            assert self.job_id is not None
            records.finish(self.ws, self.job_id, "failed", error=message)
            event = Failed(message)
        if is_terminal(event) and self.final is None:
            self.final = event  # type: ignore[assignment]
            self._cancel_kill_timer()
        return event

    def poll(self) -> list[Event]:
        """Every event that arrived since the last call; never blocks."""
        out: list[Event] = []
        while self.final is None or not self._queue.empty():
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            event = self._accept(item)
            if event is not None:
                out.append(event)
        return out

    def events(self) -> Iterator[Event]:
        """Every event until the final ``Done`` or ``Failed``; blocks between them."""
        while self.final is None:
            event = self._accept(self._queue.get())
            if event is not None:
                yield event

    @property
    def running(self) -> bool:
        return self.proc is not None and self.final is None

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    def stop(self, grace_s: float | None = 60.0) -> None:
        """Ask the job to stop at its next step (keeping what it has). Kill it only when it
        has gone ``grace_s`` without an event (None: never): evaluating and exporting what a
        Stop keeps takes a while, and reports progress as it goes."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        self._grace_s = grace_s
        self._arm_kill_timer()

    def abandon(self) -> None:
        """Close the job's stdin without a Stop: it ends at its next step keeping nothing,
        and cleans up after itself (what a closed window means for an import)."""
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()

    def _arm_kill_timer(self) -> None:
        with self._timer_lock:
            self._cancel_kill_timer()
            if self._grace_s is None or self.final is not None:
                return
            self._kill_timer = threading.Timer(self._grace_s, self.kill)
            self._kill_timer.daemon = True
            self._kill_timer.start()

    def kill(self) -> None:
        if isinstance(self.final, Done):
            return  # a late timer: the job ended well and must not be cut short now
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def _cancel_kill_timer(self) -> None:
        if self._kill_timer is not None:
            self._kill_timer.cancel()

    def wait(self, timeout: float | None = None) -> int | None:
        return None if self.proc is None else self.proc.wait(timeout)
