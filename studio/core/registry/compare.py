"""Versions side by side (metrics, size, inputs, parameters, card), and one metric across
all versions of a model: the numbers behind ``studio models compare`` and the GUI's view."""

from __future__ import annotations

from typing import Any

from studio.core.errors import InputError
from studio.core.registry.labels import card_text
from studio.core.registry.listing import version_rows
from studio.core.registry.versions import Version, get_version, list_versions
from studio.core.workspace import Workspace

MAX_COMPARED = 12


def compare(ws: Workspace, refs: list[str]) -> dict[str, Any]:
    """{"refs": [...], "rows": {section: {field: [value per version]}}}."""
    if len(refs) < 2 and not (refs and ":" not in refs[0] and "@" not in refs[0]):
        raise InputError("compare two or more versions (or give one model's name to compare "
                         "all its versions)")
    versions = _versions(ws, refs)
    rows_by_ref = {r.ref: r for v in versions for r in version_rows(ws, v.name, True)
                   if r.version == v.version}
    docs = [_fields(ws, v, rows_by_ref[v.ref]) for v in versions]
    sections: dict[str, dict[str, list[Any]]] = {}
    for section in ("about", "metrics", "inputs", "params"):
        keys: list[str] = []
        for d in docs:
            keys += [k for k in d[section] if k not in keys]
        sections[section] = {k: [d[section].get(k) for d in docs] for k in keys}
    return {"refs": [v.ref for v in versions], "rows": sections}


def _versions(ws: Workspace, refs: list[str]) -> list[Version]:
    if len(refs) == 1:  # one model: all its versions
        rows = version_rows(ws, refs[0])
        if not rows:
            get_version(ws, refs[0])  # says clearly that there is no such model
        refs = [r.ref for r in rows]
    if len(refs) > MAX_COMPARED:
        raise InputError(f"{len(refs)} versions is more than {MAX_COMPARED} side by side: "
                         "name the ones to compare")
    return [get_version(ws, r) for r in refs]


def _fields(ws: Workspace, v: Version, row: Any) -> dict[str, dict[str, Any]]:
    m = v.manifest
    card = card_text(ws, v)
    summary = next((line.strip() for line in card.splitlines()
                    if line.strip() and not line.startswith("#")), "")
    summary = summary.replace("**", "").replace("`", "")  # a cell shows text, not Markdown
    about = {"kind": m.kind, "source": m.source, "family": row.family,
             "dataset": m.lineage.dataset, "parent": m.lineage.parent,
             "aliases": ", ".join(row.aliases) or None, "size_bytes": row.size_bytes,
             "total_bytes": row.total_bytes, "card": summary[:200]}
    metrics = {k: val for k, val in m.metrics.items()
               if isinstance(val, int | float) and not isinstance(val, bool)}
    inputs = {t.name: f"{t.datatype} {list(t.shape)}" for t in m.inputs}
    for column in m.raw.get("input_schema") or []:
        inputs[f"column {column['name']}"] = column.get("kind")
    params = dict(m.training.params) if m.training else {}
    if m.compression:
        params.update({f"compression.{k}": val for k, val in m.compression.details.items()
                       if isinstance(val, str | int | float | bool)})
    return {"about": about, "metrics": metrics, "inputs": inputs,
            "params": {k: val for k, val in params.items() if not isinstance(val, dict)}}


def metric_series(ws: Workspace, name: str, metric: str) -> list[dict[str, Any]]:
    """The test ``metric`` of every version of ``name``, oldest first (None where a version
    has none)."""
    rows = version_rows(ws, name, archived=True)
    if not rows:
        get_version(ws, name)
    manifests = {v.ref: v.manifest for v in list_versions(ws, name)}
    seen = False
    out = []
    for r in rows:
        value = manifests[r.ref].metrics.get(metric)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        seen |= ok
        out.append({"ref": r.ref, "value": float(value) if ok else None,
                    "created": r.created, "aliases": list(r.aliases)})
    if not seen:
        raise InputError(f"no version of {name!r} has a test metric {metric!r}")
    return out
