"""Casting request numbers to a tensor's type without changing any of them silently.

NumPy's ``astype`` wraps integers (INT8 1000 → -24, UINT8 -1 → 255) and turns a float past
the type's range into infinity; a model would then answer 200 on numbers nobody sent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core.errors import InputError


def checked_cast(values: np.ndarray, dtype: Any, what: str, datatype: str) -> np.ndarray:
    """``values`` as ``dtype``; an InputError names the first value the cast would change
    (out of the type's range, or a fraction for an integer type). ``what`` names the tensor
    ("input 'x'"), ``datatype`` the type as the caller knows it ("INT8")."""
    dtype = np.dtype(dtype)
    if values.dtype == dtype or values.size == 0:
        return values.astype(dtype, copy=False)
    if values.dtype.kind not in "biuf":
        raise InputError(f"{what}: {datatype} data must be numbers")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise InputError(f"{what}: {_first(values, ~np.isfinite(values))} is not a finite "
                         "number")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if values.dtype.kind == "f":
            fraction = values != np.floor(values)
            if fraction.any():
                raise InputError(f"{what}: {datatype} data must be integers, got "
                                 f"{_first(values, fraction)}")
        # .item(): Python ints and floats compare exactly with each other, whatever the size
        low, high = values.min().item(), values.max().item()
        # a JSON integer past 64 bits reaches here as a float of 2**63 or more
        beyond = max(abs(low), abs(high)) >= 2**63 and values.dtype.kind == "f"
        if low < info.min or high > info.max or beyond:
            worst = low if low < info.min or abs(low) > abs(high) else high
            raise InputError(f"{what}: {worst!r} is out of range for {datatype} "
                             f"({info.min} to {info.max})")
        if values.dtype.kind == "f":
            raise InputError(f"{what}: {datatype} data must be integers, got "
                             f"{values.flat[0].item()!r}")
        return values.astype(dtype)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            out = values.astype(dtype)
        overflow = ~np.isfinite(out)
        if overflow.any():
            info = np.finfo(dtype)
            raise InputError(f"{what}: {_first(values, overflow)} is out of range for "
                             f"{datatype} (±{float(info.max):g})")
        return out
    return values.astype(dtype)


def _first(values: np.ndarray, mask: np.ndarray) -> str:
    """The first value where ``mask`` holds."""
    return repr(values.flat[np.flatnonzero(mask)[0]].item())
