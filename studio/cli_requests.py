"""``studio requests``: the request log that servers keep in the workspace."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from studio.cli_output import out
from studio.core.errors import InputError
from studio.core.printable import printable
from studio.core.workspace import Workspace


def add_parser(cmd: Callable[..., argparse.ArgumentParser]) -> None:
    p = cmd("requests", "the newest requests servers answered (kept in the workspace, "
            "oldest first)")
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="how many (default 20; the log keeps the newest 10,000)")
    p.add_argument("--model", metavar="NAME", help="of this model only")


def requests(ws: Workspace, args: argparse.Namespace) -> int:
    from studio.core import request_log

    if args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    rows = list(reversed(request_log.recent(ws, args.limit, args.model)))
    lines = [f"{'TIME':<23} {'MODEL':<28} {'ENDPOINT':<8} {'STATUS':>6} {'LATENCY':>11} "
             f"{'ROWS':>6}"]
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.time))
        lines.append(f"{when}.{int(r.time % 1 * 1000):03d} "
                     f"{printable(f'{r.model}:{r.version}'):<28} {r.endpoint:<8} "
                     f"{r.status:>6} {r.latency_ms:>8.2f} ms {r.rows:>6}")
    empty = ("no requests logged yet" if args.model is None
             else f"no requests for {printable(repr(args.model))} logged")
    out(args, {"requests": [r.to_dict() for r in rows]}, "\n".join(lines) if rows else empty)
    return 0
