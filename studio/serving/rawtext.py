"""Raw text over V2: a recipe model with text columns takes each column as a BYTES tensor
(one string per row) in place of its ``tokens`` tensor, and the recipe tokenizes it here,
exactly as for the records route. A V2 client then needs no copy of the vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from studio.core.datasets.recipe import text_tokens
from studio.core.errors import InputError

TOKENS = "tokens"


def text_specs(model: Any) -> dict[str, dict[str, Any]]:
    """The text columns ``model`` takes as BYTES in place of ``tokens``, by name (none for a
    model without text, or whose text column is named like one of its tensors)."""
    recipe = getattr(model, "recipe", None)
    if not recipe:
        return {}
    columns = [f["name"] for f in recipe["features"] if f["kind"] == "text"]
    tensors = {s["name"] for s in model.inputs}
    if not columns or TOKENS not in tensors or tensors & set(columns):
        return {}
    return {c: {"name": c, "datatype": "BYTES", "shape": [-1, 1]} for c in columns}


def expected_inputs(model: Any, specs: dict[str, Any], inputs: list[Any]
                    ) -> tuple[dict[str, Any], bool]:
    """The inputs this request is checked against, and whether it sends raw text: the text
    columns replace ``tokens`` when any input is named after one."""
    if TOKENS not in specs:  # tables and pictures: nothing to do, at no cost
        return specs, False
    texts = text_specs(model)
    sent = {t.get("name") for t in inputs if isinstance(t, Mapping)}
    if not texts or not any(isinstance(n, str) and n in texts for n in sent):
        return specs, False
    return {**{n: s for n, s in specs.items() if n != TOKENS}, **texts}, True


def tokenize(model: Any, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``tensors`` with the text columns replaced by the ``tokens`` the recipe makes."""
    columns = {}
    for name in text_specs(model):
        x = tensors.pop(name)
        if x.ndim > 2 or (x.ndim == 2 and x.shape[1] != 1):
            raise InputError(f"input {name!r}: one string per row, shape [rows] or [rows, 1]; "
                             f"got {list(x.shape)}")
        columns[name] = x.reshape(-1)
    tensors[TOKENS] = text_tokens(model.recipe, pd.DataFrame(columns))
    return tensors
