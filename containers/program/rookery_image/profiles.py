"""Per-feature profiles of raw records: what the baseline measures on the training split and the
monitor on captured traffic, in SageMaker Model Monitor's ``statistics.json`` layout.

A profile is filled a block of records at a time and holds counts only (bin counts, category
counts, moments), so a window of any size is profiled in bounded memory. Values follow the same
rules as training and serving (:mod:`rookery_image.records`): a numeric value that is not a number
and a categorical value that is a list or an object are *invalid*; ``null`` and ``""`` are
*missing*; a record without the field has it *absent*.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from rookery_image import records

# Baseline bins per numeric feature (deciles of the training split, as Model Monitor's 10 buckets).
BINS: Final = 10
# Distinct categories tracked per feature; beyond them values are counted under OTHER, so a feature
# flooded with unique strings cannot exhaust memory.
MAX_CATEGORIES: Final = 1000
OTHER: Final = "__other__"


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()


def column(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    """One field of a block of records; :data:`ABSENT` where a record lacks it."""
    return [row.get(name, ABSENT) for row in rows]


@dataclass
class Counts:
    """How the values of one feature in a block of records were found."""

    total: int = 0
    present: int = 0
    missing: int = 0
    invalid: int = 0
    absent: int = 0

    @property
    def observed(self) -> int:
        """Records that carried the field (present, missing or invalid)."""
        return self.total - self.absent

    def share(self, count: int) -> float:
        return count / self.observed if self.observed else 0.0


@dataclass
class NumericProfile:
    """A numeric feature: counts, moments and (with ``edges``) counts per baseline bin."""

    name: str
    edges: np.ndarray | None = None  # interior bin edges (BINS - 1 of them); None: no binning
    counts: Counts = field(default_factory=Counts)
    total: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    integral: bool = True
    bins: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.edges is not None:
            self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)

    def add(self, values: list[Any]) -> np.ndarray:
        """Profile one block of values; returns the present values (float64) for callers that keep them."""
        absent = sum(1 for v in values if v is ABSENT)
        given = [v for v in values if v is not ABSENT] if absent else values
        numbers, invalid = records.numbers(given)
        present = numbers[~np.isnan(numbers)]
        c = self.counts
        c.total += len(values)
        c.absent += absent
        c.invalid += len(invalid)
        c.present += len(present)
        c.missing += len(given) - len(present) - len(invalid)
        if len(present):
            self.total += float(present.sum())
            self.squares += float(np.square(present).sum())
            self.low = min(self.low, float(present.min()))
            self.high = max(self.high, float(present.max()))
            self.integral = self.integral and bool(np.all(present == np.round(present)))
            if self.edges is not None and self.bins is not None:
                self.bins += np.bincount(
                    np.searchsorted(self.edges, present, side="right"), minlength=len(self.bins)
                )
        return present

    @property
    def mean(self) -> float:
        return self.total / self.counts.present if self.counts.present else math.nan

    @property
    def std_dev(self) -> float:
        n = self.counts.present
        if not n:
            return math.nan
        return math.sqrt(max(0.0, self.squares / n - self.mean**2))

    def statistics(self, bounds: Sequence[tuple[float, float]] | None = None) -> dict[str, Any]:
        """This feature in ``statistics.json``; ``bounds`` are the bins' (lower, upper) pairs."""
        present = self.counts.present
        numerical: dict[str, Any] = {
            "common": {"num_present": present, "num_missing": self.counts.total - present},
            "mean": _finite(self.mean),
            "sum": self.total,
            "std_dev": _finite(self.std_dev),
            "min": _finite(self.low),
            "max": _finite(self.high),
        }
        if bounds is not None and self.bins is not None:
            numerical["distribution"] = {
                "kll": {
                    "buckets": [
                        {"lower_bound": lo, "upper_bound": hi, "count": int(n)}
                        for (lo, hi), n in zip(bounds, self.bins.tolist(), strict=True)
                    ]
                }
            }
        return {
            "name": self.name,
            "inferred_type": "Integral" if self.integral and present else "Fractional",
            "numerical_statistics": numerical,
            "rookery": _extra(self.counts),
        }


@dataclass
class CategoricalProfile:
    """A categorical feature: counts per category (at most :data:`MAX_CATEGORIES` distinct ones)."""

    name: str
    counts: Counts = field(default_factory=Counts)
    categories: Counter[str] = field(default_factory=Counter)

    def add(self, values: list[Any]) -> None:
        c = self.counts
        c.total += len(values)
        seen = self.categories
        for value in values:
            if value is ABSENT:
                c.absent += 1
                continue
            try:
                text = records.category(value)
            except ValueError:
                c.invalid += 1
                continue
            if text is None:
                c.missing += 1
                continue
            c.present += 1
            if text in seen or len(seen) < MAX_CATEGORIES:
                seen[text] += 1
            else:
                seen[OTHER] += 1

    def shares(self) -> dict[str, float]:
        n = self.counts.present
        return {k: v / n for k, v in self.categories.items()} if n else {}

    def statistics(self) -> dict[str, Any]:
        present = self.counts.present
        return {
            "name": self.name,
            "inferred_type": "String",
            "string_statistics": {
                "common": {"num_present": present, "num_missing": self.counts.total - present},
                "distinct_count": len(self.categories),
                "distribution": {
                    "categorical": {
                        "buckets": [{"value": k, "count": v} for k, v in self.categories.most_common()]
                    }
                },
            },
            "rookery": _extra(self.counts),
        }


Profile = NumericProfile | CategoricalProfile


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _extra(counts: Counts) -> dict[str, int]:
    """What Model Monitor's ``num_missing`` lumps together, kept apart."""
    return {"missing": counts.missing, "invalid": counts.invalid, "absent": counts.absent}


def statistics_document(item_count: int, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``statistics.json``: the dataset's record count and every feature's statistics."""
    return {"version": 0, "dataset": {"item_count": item_count}, "features": list(features)}
