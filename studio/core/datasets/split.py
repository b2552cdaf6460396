"""Seeded train/validation/test splits, stratified by class for classification."""

from __future__ import annotations

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
