"""The model card of a compressed version: what it was made from, how, and what it cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.printable import human_bytes
from studio.core.training.card import md


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def compression_card(manifest: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """Markdown with the registry's ``{ref}`` placeholder; user text escaped."""
    c = manifest["compression"]
    settings = ", ".join(f"{md(k)}={md(v)}" for k, v in c["settings"].items()) or "defaults"
    m, s = row["measurement"], row["source_measurement"]
    lines = [
        "# {ref}", "",
        f"Made from **{md(c['parent'])}** by **{md(c['method'])}** ({settings}) in Model "
        "Studio's compression lab.", "",
    ]
    if row["value"] is not None:
        flag = " **Collapsed: more than 5 points lost.**" if row["collapsed"] else ""
        lines += [
            "## Test split (the source's held-out rows)", "",
            f"{md(row['metric'])}: {row['value']:.4f} against {row['source_value']:.4f} for "
            f"the source ({row['delta_points']:+.2f} points).{flag}", "",
        ]
    else:
        lines += ["Not evaluated: the training data was not at hand.", ""]
    lines += [
        f"## Measured on this machine (ONNX Runtime, {m['threads']} "
        f"thread{'s' * (m['threads'] != 1)})", "",
        "| | source | this version | ratio |", "| --- | --- | --- | --- |",
        f"| file | {human_bytes(s['file_bytes'])} | {human_bytes(m['file_bytes'])} | "
        f"{_ratio(row['size_ratio'])} |",
        f"| parameters | {s['parameters']:,} | {m['parameters']:,} | "
        f"{_ratio(m['parameters'] / s['parameters'] if s['parameters'] else None)} |",
        f"| latency p50, batch 1 | {s['latency_p50_ms']:.3f} ms | "
        f"{m['latency_p50_ms']:.3f} ms | {_ratio(row['latency_ratio'])} |",
        f"| latency p99, batch 1 | {s['latency_p99_ms']:.3f} ms | "
        f"{m['latency_p99_ms']:.3f} ms | |",
        f"| throughput, batch 64 | {s['throughput_rows_s']:,.0f} rows/s | "
        f"{m['throughput_rows_s']:,.0f} rows/s | {_ratio(row['throughput_ratio'])} |",
        "",
    ]
    return "\n".join(lines)
