"""The model families, in the order one-click training tries them: quick baselines first, so
a tight time budget still ends with a model, the slow neural networks last.

Importing this package (and each family module) loads neither torch nor LightGBM: the GUI
lists families and their parameters from here.
"""

from __future__ import annotations

from importlib import import_module

from studio.core.errors import InputError
from studio.core.training.families.base import Family

# name → module; each module has a ``FAMILY`` object
MODULES = {
    "linear": "studio.core.training.families.linear",
    "boosted-trees": "studio.core.training.families.boosted_trees",
    "mlp": "studio.core.training.families.mlp",
    "embedding": "studio.core.training.families.embedding",
    "cnn": "studio.core.training.families.cnn",
}


def all_families() -> list[Family]:
    out = []
    for module in MODULES.values():
        try:
            out.append(import_module(module).FAMILY)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a family's own missing dependency is a real error
                raise
    return out


def get(name: str) -> Family:
    for family in all_families():
        if family.name == name:
            return family
    raise InputError(f"no model family {name!r}; families: "
                     + ", ".join(f.name for f in all_families()))


def fitting(task: str, modality: str) -> list[tuple[Family, str | None]]:
    """Every family with None where it fits this task and input, else the reason it does
    not (for a tooltip on a greyed-out choice)."""
    return [(f, f.unfit_reason(task, modality)) for f in all_families()]
