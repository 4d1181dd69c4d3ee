"""Randomized, stratified, seeded train/validation/test split (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLIT_NAMES = ("train", "validation", "test")


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.7,0.15,0.15"`` -> (0.7, 0.15, 0.15); ValueError with the fix when it is not three fractions."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--split {text!r} must be three numbers like 0.7,0.15,0.15") from None
    if len(values) != 3:
        raise ValueError(
            f"--split {text!r} has {len(values)} parts; give train,validation,test like 0.7,0.15,0.15"
        )
    if any(not 0.0 < v < 1.0 for v in values):
        raise ValueError(f"--split {text!r}: each fraction must be between 0 and 1 (exclusive)")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"--split {text!r} adds up to {sum(values):g}; the three fractions must add up to 1")
    return values[0], values[1], values[2]


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Row indices per split: each class is shuffled and cut by the fractions, then each split is shuffled.

    Deterministic for a given (labels, fractions, seed). Each class keeps its share in every split
    (up to rounding), so a rare positive class is not left out of validation or test by chance.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)[:-1]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        cuts = np.round(bounds * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts), strict=True):
            part.append(chunk)
    return [rng.permutation(np.concatenate(chunks)) for chunks in parts]
