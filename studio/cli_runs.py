"""``studio runs``: training runs as records (list, show, compare, delete); every command
takes ``--json``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from studio.cli_output import out
from studio.core import runs
from studio.core.workspace import Workspace

Handler = Callable[[Workspace, argparse.Namespace], int]
RUN = "RUN"


def add_parsers(sub: Any, cmd: Callable[..., argparse.ArgumentParser]) -> None:
    p = cmd("ls", "list training runs, newest first", sub)
    p.add_argument("--dataset", help="runs on this dataset only")
    p.add_argument("--family", help="runs whose model family is this (mlp, linear, ...)")
    p.add_argument("--status", choices=[*runs.STATUSES, "stopped", "pruned", "active"],
                   help="runs in this state only")
    p.add_argument("--search", metavar="TEXT", help="runs whose id, dataset, target, "
                   "version, family or error contains TEXT")
    p.add_argument("--limit", type=_positive, metavar="N", help="the newest N only")
    p = cmd("show", "a run: what it was asked, what it learned, its per-epoch metrics", sub)
    p.add_argument("run", metavar=RUN, help="a run id, or its first 4+ characters")
    p = cmd("compare", "runs side by side: parameters and metrics, differences marked *", sub)
    p.add_argument("runs", nargs="+", metavar=RUN)
    p = cmd("rm", "delete runs' records and checkpoints (the versions they made stay)", sub)
    p.add_argument("runs", nargs="+", metavar=RUN)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m" if s < 7200 else f"{s / 3600:.1f}h"


def _made(r: runs.Run) -> str:
    """The version a run registered, or which trial of a study it was."""
    if r.version:
        return r.version
    return f"- (trial {r.trial.rpartition('#')[2]})" if r.trial else "-"


def _score(r: runs.Run) -> str:
    return f"{r.metric} {r.score:.3f}" if r.metric and r.score is not None else "-"


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ",".join(map(str, v))
    return str(v)


def runs_ls(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.jobs.records import reap_stale

    reap_stale(ws)  # a run whose process is gone is failed, not running
    rows = runs.list_runs(ws, args.dataset, args.status, args.family, args.search, args.limit)
    lines = [f"{'RUN':<12}  {'STATE':<11} {'DATASET':<18} {'FAMILY':<14} {'TEST':<15} "
             f"{'TIME':>7}  {'VERSION':<20} STARTED"]
    lines += [f"{r.id:<12}  {r.state:<11} {r.dataset[:18]:<18} {r.family[:14]:<14} "
              f"{_score(r):<15} {_seconds(r.duration_s):>7}  {_made(r)[:20]:<20} "
              f"{_when(r.started or r.created)}" for r in rows]
    empty = "no training runs yet: studio train DATASET --target COLUMN" \
        if not any((args.dataset, args.status, args.family, args.search)) \
        else "no run matches"
    out(args, {"runs": [r.to_dict() for r in rows]}, "\n".join(lines) if rows else empty)
    return 0


def runs_show(ws: Workspace, args: argparse.Namespace) -> int:
    d = runs.get_run(ws, args.run)
    r = d.run
    lines = [f"run {r.id}  {r.state}" + (f"  ({r.error})" if r.error else ""),
             f"dataset   {r.dataset}" + (f"@{r.digest[:12]}" if r.digest else "")
             + f", target {r.target!r}" + (f", {r.task}" if r.task else ""),
             f"family    {r.family}" + (f" (asked: {d.spec.get('family')})"
                                        if d.spec.get("family") not in (None, r.family) else ""),
             f"device    {r.device or '-'}" + (f", {d.facts['threads']} threads"
                                               if d.facts.get("threads") else ""),
             f"started   {_when(r.started)}, took {_seconds(r.duration_s)}",
             f"version   {r.version or '-'}"]
    if r.resumed_from:
        lines.append(f"resumed   from run {r.resumed_from}")
    if d.result.get("metrics"):
        lines.append("test      " + ", ".join(
            f"{k} {_value(v)}" for k, v in d.result["metrics"].items()
            if isinstance(v, int | float) and not isinstance(v, bool)))
    if d.params:
        lines.append("params    " + ", ".join(f"{k}={_value(v)}"
                                                 for k, v in sorted(d.params.items())))
    for series, curves in d.history.items():
        lines.append(f"{series or 'metrics'}:")
        for name, points in curves.items():
            values = [v for _, v in points]
            best = (max if name.startswith("val_") and name != "val_loss" else min)(values)
            at = points[values.index(best)][0]
            lines.append(f"  {name:<13} {len(points):>4} epochs  first {values[0]:.4g}  "
                         f"best {best:.4g} (epoch {at})  last {values[-1]:.4g}")
    out(args, d.to_dict(), "\n".join(lines))
    return 0


def runs_compare(ws: Workspace, args: argparse.Namespace) -> int:
    doc = runs.compare(ws, args.runs)
    ids = doc["runs"]
    width = max(14, *(len(i) for i in ids))
    lines = [f"  {'':<24}" + "".join(f"{i:<{width + 2}}" for i in ids)]
    for section in ("about", "params", "metrics"):
        lines.append(f"{section}:")
        for row in doc[section]:
            mark = "*" if row["differs"] else " "
            lines.append(f"{mark} {row['name'][:24]:<24}" + "".join(
                f"{_value(v)[:width]:<{width + 2}}" for v in row["values"]))
    out(args, doc, "\n".join(lines))
    return 0


def runs_rm(ws: Workspace, args: argparse.Namespace) -> int:
    gone = runs.delete(ws, args.runs)
    out(args, {"deleted": gone}, "\n".join(
        f"deleted run {i} (versions it made are kept)" for i in gone))
    return 0


HANDLERS: dict[str, Handler] = {"ls": runs_ls, "show": runs_show, "compare": runs_compare,
                                "rm": runs_rm}
