"""``studio compress``: the compression lab from the terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from studio.cli_output import out
from studio.core.workspace import Workspace

# the method names, for --help without importing the lab (tests check them against it)
METHOD_NAMES = ("int8-dynamic", "int8-static", "fp16", "prune", "distill")


def add_parser(cmd: Callable[..., argparse.ArgumentParser]) -> None:
    p = cmd("compress", "make smaller, faster versions of a model: each method's result is "
            "a new version, evaluated on the source's test split and measured beside it")
    p.add_argument("ref", nargs="?", metavar="NAME[:N|@ALIAS]")
    p.add_argument("--method", action="append", default=[], metavar="METHOD[:K=V,…]",
                   help="repeatable, settings after a colon (prune:kind=structured,"
                   f"sparsity=0.5). Methods: {', '.join(METHOD_NAMES)}; --settings lists "
                   "each one's settings")
    p.add_argument("--settings", action="store_true",
                   help="list every method's settings with defaults and exit")
    p.add_argument("--chain", action="store_true",
                   help="apply the methods in order, each to the one before's result "
                   "(e.g. distill, then prune, then int8-dynamic)")
    p.add_argument("--dataset", help="data to calibrate, fine-tune and evaluate on, for a "
                   "version whose training data is not in the workspace")
    p.add_argument("--threads", type=int, default=1,
                   help="ONNX Runtime threads when measuring (default 1)")
    p.add_argument("--repeats", type=int, default=10,
                   help="measuring rounds (each 50 batch-1 and 4 batch-64 calls)")


def _method(row: dict[str, Any], source: str) -> str:
    """``prune magnitude 0.7``; a chained step names what it started from."""
    s = row.get("settings") or {}
    name = row["method"]
    if name == "prune":
        name += f" {s.get('kind', '')} {s.get('sparsity', '')}".rstrip()
    return name + (f" of {row['parent']}" if row.get("parent") != source else "")


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def table(result: dict[str, Any]) -> str:
    """The results as a terminal table, the source first."""
    metric = result.get("metric") or "metric"
    base = result.get("source_value")
    head = ["version", "method", metric, "Δ points", "size", "latency", "throughput"]
    rows = [[result["source"], "source", "-" if base is None else f"{base:.4f}", "", "1.00x",
             "1.00x", "1.00x"]]
    for r in result["results"]:
        name = _method(r, result["source"])
        if r["status"] != "done":
            rows.append(["-", name, "failed (below)", "", "", "", ""])
            continue
        delta = r["delta_points"]
        rows.append([
            r["version"], name, "-" if r["value"] is None else f"{r['value']:.4f}",
            "-" if delta is None else f"{delta:+.2f}" + (" COLLAPSED" if r["collapsed"] else ""),
            _ratio(r["size_ratio"]) + (" LARGER" if r["size_ratio"] > 1 else ""),
            _ratio(r["latency_ratio"]), _ratio(r["throughput_ratio"])])
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    notes = sorted({f"{r['method']}: {r['details']['note']}" for r in result["results"]
                    if (r.get("details") or {}).get("note")})
    from studio.core.compress.methods import sparsity_text

    notes += [f"{r['version']} prune: {sparsity_text(r['details'])}" for r in result["results"]
              if r["status"] == "done" and r["method"] == "prune"]
    notes += [f"{r['method']} of {r['parent']} failed: {r['message']}"
              for r in result["results"] if r["status"] != "done"]
    if result.get("not_evaluated"):
        notes.append(f"not evaluated: {result['not_evaluated']}")
    return "\n".join([*("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
                     .rstrip() for row in [head, *rows]), *notes])


def settings_text() -> str:
    from studio.core.compress.methods import METHODS

    lines = []
    for m in METHODS:
        lines.append(f"{m.name}: {m.description}")
        for p in m.settings:
            choices = f" ({'|'.join(p.choices)})" if p.choices else ""
            lines.append(f"  {p.name}={p.default}{choices}  {p.help}")
    return "\n".join(lines)


def compress(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.cli import CliError, run_job
    from studio.core.compress import lab, methods
    from studio.core.errors import InputError
    from studio.core.registry import get_version

    if args.settings:
        print(settings_text())
        return 0
    if not args.ref:
        raise InputError("name the version to compress: studio compress NAME[:N] --method M")
    if not args.method:
        raise InputError("choose at least one --method: " + ", ".join(METHOD_NAMES))
    steps = lab.parse_steps([{"method": name, "settings": settings}
                             for name, settings in methods.parse_steps(args.method)])
    if args.threads < 1 or args.repeats < 1:
        raise InputError("--threads and --repeats must be at least 1")
    version = get_version(ws, args.ref)  # a missing one is said before a job starts
    result = run_job(ws, "compress", {
        "source": version.ref, "steps": [s.to_dict() for s in steps], "chain": args.chain,
        "dataset": args.dataset, "threads": args.threads, "repeats": args.repeats},
        quiet=args.json)
    made = [r["version"] for r in result["results"] if r["version"]]
    document = {**result, "versions": made, "version": made[-1] if made else None}
    out(args, document, table(result))
    if not made:
        raise CliError("no method made a version; see the table", 1)
    failed = [r["method"] for r in result["results"] if r["status"] != "done"]
    if failed:  # the table says why; a script learns of it from the exit code
        print(f"studio: error: {', '.join(failed)} failed; see the table", file=sys.stderr)
        return 1
    return 0
