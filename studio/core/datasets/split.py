"""Seeded train/validation/test splits, stratified by class for classification."""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.core.errors import InputError


def split_indices(
    labels: np.ndarray | None, n: int, ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, validation and test rows. ``labels`` stratifies when given."""
    if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        raise InputError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    if n < 3:
        raise InputError(f"need at least 3 rows to split into train/validation/test, got {n}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [
        np.nonzero(labels == c)[0] for c in np.unique(labels)
    ]
    parts: list[list[np.ndarray]] = [[], [], []]
    for idx in groups:
        idx = rng.permutation(idx)
        k = len(idx)
        n_test = round(k * ratios[2])
        n_val = round(k * ratios[1])
        if k - n_test - n_val < 1:  # every class keeps at least one training row
            n_test = min(n_test, max(0, k - 1))
            n_val = min(n_val, max(0, k - 1 - n_test))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    if len(val) == 0 or len(test) == 0:
        raise InputError(f"too few rows ({n}) for a validation and a test split")
    return train, val, test


def strata(values: Any) -> np.ndarray:
    """Class codes in order of first appearance (a pandas Series or an Arrow array)."""
    import pyarrow as pa

    arr = values if isinstance(values, pa.ChunkedArray | pa.Array) else pa.array(values)
    encoded = arr.dictionary_encode()
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def present_mask(values: Any) -> np.ndarray:
    """Rows whose value is not missing: null, NaN, or a missing-value word such as "NA"."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from studio.core.datasets.recipe import NA_TOKENS

    arr = values if isinstance(values, pa.ChunkedArray | pa.Array) else pa.array(values)
    missing = pc.is_null(arr, nan_is_null=True)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        words = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
        missing = pc.or_(missing, pc.is_in(words, value_set=pa.array(sorted(NA_TOKENS))))
    return ~np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)


def split_preview(values: Any, classify: bool, ratios: tuple[float, float, float],
                  seed: int = 0) -> dict[str, Any]:
    """Rows per split (and per class) exactly as training will cut them."""
    import pyarrow as pa

    arr = values if isinstance(values, pa.ChunkedArray | pa.Array) else pa.array(values)
    keep = present_mask(arr)
    kept = arr.filter(pa.array(keep))
    codes = strata(kept) if classify else None
    parts = split_indices(codes, len(kept), ratios, seed)
    out: dict[str, Any] = {"sizes": [len(p) for p in parts]}
    if codes is not None:
        names = kept.dictionary_encode()
        if isinstance(names, pa.ChunkedArray):
            names = names.combine_chunks()
        labels = [str(v) for v in names.dictionary.to_pylist()]
        counts = [np.bincount(codes[p], minlength=len(labels)) for p in parts]
        out["classes"] = {label: [int(c[i]) for c in counts] for i, label in enumerate(labels)}
    return out
