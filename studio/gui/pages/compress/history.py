"""Earlier results of a version: the versions compressed from it, as rows of the results
table, read from their manifests' ``compression`` sections (plain Python: no Qt)."""

from __future__ import annotations

from typing import Any

from studio.core.errors import StudioError
from studio.core.workspace import Workspace

MAX_ROWS = 40  # the newest; older ones stay on the Models page


def earlier_rows(ws: Workspace, ref: str) -> list[dict[str, Any]]:
    """Rows (as the compress job's ``Compressed`` events carry them) of every version made
    from ``ref`` by the lab, directly or at the end of a chain, oldest first."""
    from studio.core.registry import get_version
    from studio.core.registry.listing import version_rows

    name = ref.partition(":")[0]
    made = [r for r in version_rows(ws, name) if r.source == "compression"][-MAX_ROWS:]
    out = []
    for listed in made:
        try:
            manifest = get_version(ws, listed.ref).manifest
        except StudioError:  # a damaged manifest: the Models page says so
            continue
        section = manifest.raw.get("compression") or {}
        if section.get("root") != ref:
            continue
        out.append(_row(listed.ref, section))
    return out


def _row(ref: str, c: dict[str, Any]) -> dict[str, Any]:
    ratios = c.get("ratios") or {}
    return {"method": c.get("method"), "settings": c.get("settings") or {},
            "parent": c.get("parent"), "version": ref, "status": "done", "message": "",
            "metric": c.get("metric"), "value": c.get("value"),
            "source_value": c.get("source_value"), "delta_points": c.get("delta_points"),
            "collapsed": "collapsed" in (c.get("flags") or []),
            "size_ratio": ratios.get("size_ratio"), "latency_ratio": ratios.get(
                "latency_ratio"), "throughput_ratio": ratios.get("throughput_ratio"),
            "measurement": c.get("measurement"),
            "source_measurement": c.get("source_measurement"),
            "details": c.get("details") or {}}
