"""What a run will do, from the page's choices (plain Python: no Qt): which methods apply,
in which order a chain takes them, and why Run must wait."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from studio.core.compress import methods
from studio.core.registry.manifest import Manifest

# a chain learns first (distil, then prune the student) and quantizes last: the lab refuses
# anything after int8 or fp16
CHAIN_ORDER = ("distill", "prune", "int8-static", "int8-dynamic", "fp16")
QUANTIZERS = ("int8-static", "int8-dynamic", "fp16")


def reasons(manifest: Manifest, ticked: Sequence[str], chain: bool) -> dict[str, str | None]:
    """Each method's reason it cannot be ticked (None where it can). In a chain after
    distillation every step works on the student, a network of known architecture,
    whatever the source is (boosted trees included)."""
    out = {m.name: reason for m, reason in methods.applicable(manifest)}
    if chain and "distill" in ticked and out.get("distill") is None:
        out = {name: None for name in out}
    return out


def ordered(ticked: Sequence[str], chain: bool) -> list[str]:
    """The steps in the order they run: the catalog's side by side, CHAIN_ORDER chained."""
    order = CHAIN_ORDER if chain else tuple(m.name for m in methods.METHODS)
    return sorted(ticked, key=order.index)


def needs_data(ticked: Sequence[str]) -> bool:
    return any(methods.get(name).needs_data for name in ticked)


def blocker(ticked: Sequence[str], chain: bool, missing_data: str | None,
            dataset: str | None) -> str | None:
    """Why Run cannot start with these choices; None when it can."""
    if not ticked:
        return "Tick at least one method"
    if chain and sum(name in QUANTIZERS for name in ticked) > 1:
        return ("A chain quantizes once, at its end: tick one of int8 (dynamic), int8 "
                "(static) and fp16, or untick Chain")
    if needs_data(ticked) and missing_data and not dataset:
        which = ", ".join(methods.get(n).title for n in ticked if methods.get(n).needs_data)
        return f"{which} needs rows to learn or calibrate on: choose a dataset"
    return None


def spec(source: str, steps: Sequence[tuple[str, Mapping[str, Any]]], chain: bool,
         dataset: str | None, threads: int = 1) -> dict[str, Any]:
    """The compress job's spec."""
    names = ordered([name for name, _ in steps], chain)
    given = dict(steps)
    return {"source": source,
            "steps": [{"method": n, "settings": dict(given[n])} for n in names],
            "chain": chain, "dataset": dataset or None, "threads": threads}
