"""The Pareto front of results: higher metric and smaller cost (size or latency ratio)."""

from __future__ import annotations

from collections.abc import Sequence


def front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (as small a cost ``x`` and as high a
    metric ``y``, one of them strictly), by cost ascending. Of equal points the first is
    kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    out: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            out.append(i)
            best = points[i][1]
    return out


def steps(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The front as a step line: from each point across at its metric to the next point's
    cost, then up to its metric (what the best model costing at most x reaches)."""
    idx = front(points)
    xs: list[float] = []
    ys: list[float] = []
    for k, i in enumerate(idx):
        x, y = points[i]
        if k:
            xs.append(x)
            ys.append(ys[-1])
        xs.append(x)
        ys.append(y)
    return xs, ys
