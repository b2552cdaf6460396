"""The lab's methods: names, settings and whether each applies to a version.

Light to import (no torch, onnx or onnxruntime): the GUI builds its method list and the CLI
its options from here, and a method that does not apply is shown disabled with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.core.errors import InputError
from studio.core.registry.manifest import Manifest
from studio.core.training.params import Param

TORCH_FAMILIES = ("mlp", "linear", "embedding", "cnn")  # families whose weights torch holds
TREE_FAMILIES = ("boosted-trees",)


@dataclass(frozen=True)
class Method:
    name: str  # as typed after --method
    title: str
    description: str
    settings: tuple[Param, ...]
    needs_weights: bool = False  # torch weights and a network to rebuild (prune)
    needs_data: bool = False  # rows of the source's training split

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults overlaid with ``given`` (checked); an unknown key lists the known."""
        known = {p.name: p for p in self.settings}
        out = {p.name: p.default for p in self.settings}
        for key, value in given.items():
            if key not in known:
                raise InputError(f"method {self.name} has no setting {key!r}"
                                 + (f"; it has: {', '.join(sorted(known))}" if known
                                    else "; it takes none"))
            out[key] = known[key].check(value)
        return out


METHODS: tuple[Method, ...] = (
    Method("int8-dynamic", "int8 (dynamic)",
           "Weights stored as 8-bit integers, activations quantized on the fly: about a "
           "quarter of the size, faster matrix products on most CPUs.",
           (Param("per_channel", False, "bool", "One scale per output channel instead of "
                  "one per weight matrix: closer to fp32, a little slower."),)),
    Method("int8-static", "int8 (static)",
           "Weights and activations as 8-bit integers (QDQ), the activations' ranges "
           "calibrated on rows of the training split.",
           (Param("per_channel", True, "bool", "One scale per output channel: usually "
                  "more accurate for the same speed."),
            Param("calibration_rows", 512, "int", "Rows of the training split the "
                  "activation ranges are measured on.", 16, 10000)),
           needs_data=True),
    Method("fp16", "fp16",
           "Weights and arithmetic in 16-bit floats: half the size. Faster on GPUs; on a "
           "CPU it saves size, not time.", ()),
    Method("prune", "Pruning",
           "Remove the weakest weights, then fine-tune on the training split. Structured "
           "pruning removes whole neurons or channels, so the model really shrinks; "
           "magnitude pruning zeroes single weights (the file stays as large).",
           (Param("kind", "structured", "str", "structured: whole neurons or channels; "
                  "magnitude: single weights, globally by size.",
                  choices=("structured", "magnitude")),
            Param("sparsity", 0.5, "float", "Share of the neurons (structured) or weights "
                  "(magnitude) removed.", 0.05, 0.95),
            Param("epochs", 30, "int", "Epochs of fine-tuning after pruning.", 0, 1000)),
           needs_weights=True, needs_data=True),
    Method("distill", "Distillation",
           "Train a smaller student on the model's soft predictions plus the true labels. "
           "Works for any teacher, boosted trees included.",
           (Param("fraction", 0.25, "float", "The student's size as a share of the "
                  "teacher's parameters (at most).", 0.01, 1.0),
            Param("temperature", 2.0, "float", "Softens the teacher's probabilities, so "
                  "the student learns how alike the classes are.", 1.0, 20.0),
            Param("alpha", 0.7, "float", "Weight of the teacher's soft labels against "
                  "the true labels (1: teacher only).", 0.0, 1.0),
            Param("epochs", 60, "int", "Epochs of training the student.", 1, 2000)),
           needs_data=True),
)

BY_NAME = {m.name: m for m in METHODS}


def get(name: str) -> Method:
    try:
        return BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}: one of {', '.join(BY_NAME)}") from None


def family(manifest: Manifest) -> str | None:
    """The family whose network the version holds (a compressed version keeps its
    source's, or "mlp" for a distilled student)."""
    network = manifest.raw.get("network") or {}
    if network.get("family"):
        return str(network["family"])
    return manifest.training.family if manifest.training is not None else None


def unfit_reason(method: Method, manifest: Manifest) -> str | None:
    """None when ``method`` applies to the version; else a sentence saying why not."""
    fam = family(manifest)
    if "model.onnx" not in manifest.files:
        return "this version is weights only: it has no graph to run, measure or compress"
    if fam in TREE_FAMILIES and method.name in ("int8-dynamic", "int8-static", "fp16",
                                                "prune"):
        return ("a boosted-tree model has no weight matrices to "
                + ("prune" if method.name == "prune" else "quantize")
                + "; distil it into a network first")
    done = manifest.compression.method if manifest.compression is not None else None
    if method.needs_weights:
        if "weights.safetensors" not in manifest.files:
            if done in ("int8-dynamic", "int8-static", "fp16"):
                return (f"this version is {done}, without trainable weights: prune its "
                        f"parent ({manifest.compression.parent}) instead")
            return "pruning fine-tunes the network's weights, and this version has none"
        if fam not in TORCH_FAMILIES:
            return "pruning needs a network the studio trained (its architecture is known)"
    if method.name == "distill" and (manifest.recipe is None or manifest.task is None):
        return ("a student learns from the teacher's predictions on rows of a dataset; "
                "this version has no recipe to read a dataset with")
    if method.name == "int8-static" and manifest.recipe is None:
        return "static int8 calibrates on rows of a dataset; this version has no recipe"
    if method.name in ("int8-dynamic", "int8-static") and done in ("int8-dynamic",
                                                                   "int8-static"):
        return "this version is already int8"
    if method.name in ("int8-dynamic", "int8-static") and done == "fp16":
        return (f"this version is fp16: quantize its fp32 parent "
                f"({manifest.compression.parent}) instead")
    if method.name == "fp16" and manifest.compression is not None \
            and manifest.compression.method in ("fp16", "int8-dynamic", "int8-static"):
        return f"this version is already {manifest.compression.method}"
    return None


def applicable(manifest: Manifest) -> list[tuple[Method, str | None]]:
    """Every method with the reason it does not apply (None where it does)."""
    return [(m, unfit_reason(m, manifest)) for m in METHODS]


def parse_steps(items: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """``method[:key=value,key=value]`` items (the CLI's ``--method``) as (name, settings)."""
    out = []
    for item in items:
        name, _, rest = item.partition(":")
        settings: dict[str, str] = {}
        for pair in filter(None, rest.split(",")):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise InputError(f"setting {pair!r} of method {name!r} is not key=value")
            settings[key.strip()] = value.strip()
        get(name.strip())
        out.append((name.strip(), settings))
    return out


def sparsity_text(details: Mapping[str, Any]) -> str:
    """A pruned result's sparsity as measured in its file, and what it was measured on."""
    real = details.get("measured_sparsity")
    if not isinstance(real, int | float):
        return "sparsity not measured"
    said = f"{real:.1%} ({details.get('measured_on', 'of the prunable weights')})"
    before, after = details.get("parameters_before"), details.get("nonzero_parameters_after")
    if isinstance(before, int) and isinstance(after, int):
        said += f"; {after:,} of {before:,} weights left non-zero"
    return said
