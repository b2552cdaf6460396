"""The common V2 request, decoded in one pass: every input a JSON list of numbers for a
float input, with its full shape, and nothing else asked (no parameters, no outputs list,
no binary data).

It is most of the traffic a model server sees, and the general decode's checks (each one
worded for the case that fails it) cost more than the request's share of the model run.
Here every test only says "this is the common case"; anything else, even a request that is
merely unusual, goes to the general decode, which accepts or words the refusal exactly as
before. What both accept they turn into the same tensors: a float or integer that fits the
input's float type, cast by NumPy as ``checked_cast`` casts it.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

# (datatype, dtype, shape after the batch axis, values per row) per input name
Table = dict[str, tuple[str, np.dtype[Any], list[int], int]]
FLOATS = {"FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32),
          "FP64": np.dtype(np.float64)}
RANGE = {k: float(np.finfo(v).max) for k, v in FLOATS.items()}
_tables: weakref.WeakKeyDictionary[Any, Table | None] = weakref.WeakKeyDictionary()


def table(model: Any) -> Table | None:
    """What the quick decode checks ``model``'s inputs against; None when an input is not
    a float tensor with a fixed row shape (text, integers, pictures of any size)."""
    try:
        return _tables[model]
    except KeyError:
        pass
    found: Table | None = {}
    for spec in model.inputs:
        dtype, row = FLOATS.get(spec["datatype"]), list(spec["shape"][1:])
        if dtype is None or any(d < 1 for d in row):
            found = None
            break
        found[spec["name"]] = (spec["datatype"], dtype, row, int(np.prod(row, dtype=np.int64)))
    _tables[model] = found
    return found


def tensors(model: Any, request: Any, max_rows: int, max_values: int
            ) -> dict[str, np.ndarray] | None:
    """``request``'s inputs as tensors when it is the common case, else None."""
    specs = table(model)
    if specs is None or type(request) is not dict:
        return None
    n = len(request)
    if not (n == 1 or (n == 2 and type(request.get("id")) is str)):
        return None
    inputs = request.get("inputs")
    if type(inputs) is not list or len(inputs) != len(specs):
        return None
    out: dict[str, np.ndarray] = {}
    batch, total = None, 0
    for t in inputs:
        if type(t) is not dict or len(t) != 4:
            return None
        name, shape, data = t.get("name"), t.get("shape"), t.get("data")
        spec = specs.get(name) if type(name) is str else None
        if (spec is None or name in out or t.get("datatype") != spec[0]
                or type(shape) is not list or type(data) is not list):
            return None
        for d in shape:  # (True == 1: the comparisons below would take a boolean)
            if type(d) is not int:
                return None
        rows = shape[0] if shape else 0
        if (not 0 < rows <= max_rows or shape[1:] != spec[2]
                or len(data) != rows * spec[3] or batch not in (None, rows)):
            return None
        total += len(data)
        if total > max_values:
            return None
        try:
            raw = np.array(data)  # flat numbers only: nested or text lists are not this case
        except ValueError:  # ragged
            return None
        if raw.ndim != 1 or raw.dtype.kind not in "iuf":
            return None
        # in the type's range (FP16 ends at 65504), tested on the Python numbers: cheaper
        # than any NumPy reduction at these sizes; a NaN (possible from Python callers,
        # never from JSON) fails it as the sum
        top = RANGE[spec[0]]
        if not (-top <= min(data) <= max(data) <= top and math.isfinite(sum(data))):
            return None  # the general decode names the value
        out[name] = raw.astype(spec[1]).reshape(shape)
        batch = rows
    return out
