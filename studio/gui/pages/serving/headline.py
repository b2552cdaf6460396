"""One line of what the server did lately, above the charts."""

from __future__ import annotations

from typing import Any


def headline(stats: dict[str, Any]) -> str:
    """From an /admin/stats answer: the rate now, the last minute, and since the start."""
    w = stats["window"]
    busy = [s for s in w["series"] if s["requests"]]
    p95 = max((s["p95_ms"] for s in busy if s["p95_ms"] is not None), default=None)
    now = busy[-1]["throughput"] if busy and busy[-1]["t"] == w["series"][-1]["t"] else 0.0
    total = sum(m["requests"] for m in stats.get("models", []))
    rate = "–" if w["error_rate"] is None else f"{w['error_rate']:.1%}"
    return (f"{now:,.1f} requests/s now · {w['requests']:,} in the last minute, {rate} errors"
            + (f", slowest p95 {p95:.1f} ms" if p95 is not None else "")
            + f" · {total:,} since it started {duration(stats['uptime_s'])} ago")


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"
