"""What the preprocessing passes exchange, so neither the split nor the fitted preprocessor depends on
how the raw objects are sharded over processing instances.

Profile (each shard: its rows' keys, units and labels, counts, levels) -> Plan (every Fit host merges
every profile, in one order, into the same split plan and duplicate rule) -> TrainStats (each shard:
mergeable statistics of its training rows) -> the preprocessor (every Preprocess host merges every
TrainStats the same way).

Counts, levels, sums and the split are exact. Medians come from Apache DataSketches KLL sketches
(``SKETCH_K``): a sketch keeps every value until it holds ``SKETCH_K`` of them, so a column with at most
that many training values on each shard gets the exact median (``np.median``'s value, bit for bit);
above it the median's rank is within ``median_rank_error()`` (about 0.018% of the rows, at 99%
confidence) of the true one. The merge reads every shard's retained values with their weights and
takes the weighted median, with no further compaction: it is deterministic, and its rank error is at
most the sum of the shards' errors, the same bound.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

from rookery_image.splitting import SplitPlan

# KLL's accuracy parameter (its largest is 65535): exact up to this many values per shard; rank
# error about 1.8e-4 above it; a serialized sketch stays under ~0.5 MB.
SKETCH_K = 16384

PROFILE_SUFFIX = ".profile.json"
KEYS_SUFFIX = ".keys.npz"
STATS_SUFFIX = ".stats.json"
PLAN_FILE = "plan.json"


def median_rank_error(k: int = SKETCH_K) -> float:
    """The normalized rank error of one quantile of a KLL sketch of accuracy ``k`` (99% confidence)."""
    return float(kll_doubles_sketch.get_normalized_rank_error(k, False))


# --- Profile ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One shard after cleaning: what Fit needs to plan the split and check the data as a whole."""

    shard: str  # the shard's first raw file ("" when the shard holds none): its name in the plan
    files: tuple[str, ...]
    skipped: tuple[dict[str, str], ...]
    records: int
    rows_read: int
    missing_target: int
    duplicates: int  # copies dropped within the shard
    fields: tuple[str, ...]
    target_counts: dict[str, int]  # kept rows per class name
    invalid_values: dict[str, int]
    invalid_examples: dict[str, list[str]]
    levels: tuple[tuple[str, ...], ...]  # per categorical column, sorted
    group_hashes: np.ndarray  # uint64, the shard's distinct groups
    row_keys: np.ndarray  # uint64, one per kept row (splitting.row_keys)
    units: np.ndarray  # uint64, one per kept row
    labels: np.ndarray  # int8, one per kept row

    def write(self, folder: Path, host: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        head = {
            "shard": self.shard,
            "files": list(self.files),
            "skipped": list(self.skipped),
            "records": self.records,
            "rows_read": self.rows_read,
            "missing_target": self.missing_target,
            "duplicates": self.duplicates,
            "fields": list(self.fields),
            "target_counts": self.target_counts,
            "invalid_values": self.invalid_values,
            "invalid_examples": self.invalid_examples,
            "levels": [list(levels) for levels in self.levels],
        }
        (folder / f"{host}{PROFILE_SUFFIX}").write_text(json.dumps(head) + "\n", encoding="utf-8")
        with (folder / f"{host}{KEYS_SUFFIX}").open("wb") as out:
            np.savez(
                out,
                group_hashes=self.group_hashes,
                row_keys=self.row_keys,
                units=self.units,
                labels=self.labels,
            )

    @classmethod
    def read_all(cls, folder: Path) -> list[Profile]:
        """Every host's profile under ``folder``, ordered by shard (the order every host merges in)."""
        found = []
        for head_path in sorted(folder.rglob(f"*{PROFILE_SUFFIX}")):
            head = json.loads(head_path.read_text(encoding="utf-8"))
            keys_path = head_path.with_name(head_path.name.removesuffix(PROFILE_SUFFIX) + KEYS_SUFFIX)
            with np.load(keys_path) as arrays:
                found.append(
                    cls(
                        shard=str(head["shard"]),
                        files=tuple(head["files"]),
                        skipped=tuple(head["skipped"]),
                        records=int(head["records"]),
                        rows_read=int(head["rows_read"]),
                        missing_target=int(head["missing_target"]),
                        duplicates=int(head["duplicates"]),
                        fields=tuple(head["fields"]),
                        target_counts={str(k): int(v) for k, v in head["target_counts"].items()},
                        invalid_values={str(k): int(v) for k, v in head["invalid_values"].items()},
                        invalid_examples={str(k): list(v) for k, v in head["invalid_examples"].items()},
                        levels=tuple(tuple(levels) for levels in head["levels"]),
                        group_hashes=arrays["group_hashes"].astype(np.uint64),
                        row_keys=arrays["row_keys"].astype(np.uint64),
                        units=arrays["units"].astype(np.uint64),
                        labels=arrays["labels"].astype(np.int8),
                    )
                )
        return sorted(found, key=lambda p: (p.shard == "", p.shard))


# --- Plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The whole dataset's decisions, the same on every host: the split, which shard keeps a row that
    several shards hold, the classes and levels, and the facts the data report states."""

    split: SplitPlan
    shared_keys: np.ndarray  # uint64, ascending: rows held by several shards
    keepers: tuple[str, ...]  # the shard that keeps each of them
    negative_class: str
    levels: tuple[tuple[str, ...], ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def kept(self, shard: str, row_keys: np.ndarray) -> np.ndarray:
        """Which of a shard's rows it keeps (bool): all but copies another shard keeps."""
        if not len(self.shared_keys):
            return np.ones(len(row_keys), dtype=bool)
        at = np.minimum(np.searchsorted(self.shared_keys, row_keys), len(self.shared_keys) - 1)
        shared = self.shared_keys[at] == row_keys
        keeper = np.asarray(self.keepers, dtype=object)[at]
        return ~shared | (keeper == shard)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split.to_dict(),
            "shared_keys": self.shared_keys.tolist(),
            "keepers": list(self.keepers),
            "negative_class": self.negative_class,
            "levels": [list(levels) for levels in self.levels],
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        return cls(
            split=SplitPlan.from_dict(raw["split"]),
            shared_keys=np.asarray(raw["shared_keys"], dtype=np.uint64),
            keepers=tuple(str(k) for k in raw["keepers"]),
            negative_class=str(raw["negative_class"]),
            levels=tuple(tuple(str(v) for v in levels) for levels in raw["levels"]),
            summary=dict(raw["summary"]),
        )


def shared_rows(profiles: Sequence[Profile]) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Rows several shards hold: their keys, the shard that keeps each (the first in merge order),
    and a mask over the concatenated rows of ``profiles`` of the copies that are kept."""
    keys = np.concatenate([p.row_keys for p in profiles]) if profiles else np.empty(0, np.uint64)
    owner = np.concatenate(
        [np.full(len(p.row_keys), i) for i, p in enumerate(profiles)] or [np.empty(0, int)]
    )
    order = np.argsort(keys, kind="stable")  # stable: within one key, shards in merge order
    ranked = keys[order]
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = ranked[1:] != ranked[:-1]
    keep = np.zeros(len(keys), dtype=bool)
    keep[order[first]] = True
    several = ~first
    several[:-1] |= ~first[1:]  # the first copy of a key that has another
    starts = first & several
    shared_keys = ranked[starts]
    keepers = tuple(profiles[int(i)].shard for i in owner[order[starts]].tolist())
    return shared_keys, keepers, keep


# --- TrainStats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumericStats:
    """One numeric column of a shard's training rows: exact moments of the values present, the
    missing count, and a KLL sketch of the values."""

    count: int
    mean: float
    m2: float  # sum of squared deviations from ``mean``
    missing: int
    sketch: bytes

    @classmethod
    def of(cls, values: np.ndarray, k: int = SKETCH_K) -> NumericStats:
        present = values[~np.isnan(values)]
        sketch = kll_doubles_sketch(k)
        if len(present):
            sketch.update(present)
            mean = float(present.mean())
            m2 = float(((present - mean) ** 2).sum())
        else:
            mean = m2 = 0.0
        return cls(len(present), mean, m2, len(values) - len(present), sketch.serialize())


def combine_moments(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    """Chan et al.'s pairwise update of (count, mean, m2)."""
    na, ma, m2a = a
    nb, mb, m2b = b
    n = na + nb
    if not n:
        return 0, 0.0, 0.0
    delta = mb - ma
    return n, ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n


def weighted_median(items: np.ndarray, weights: np.ndarray) -> float:
    """The median of the values ``items`` repeated ``weights`` times, as ``np.median`` takes it
    (the mean of the two middle values when the total weight is even)."""
    order = np.argsort(items, kind="stable")
    items, cumulative = items[order], np.cumsum(weights[order])
    total = int(cumulative[-1])
    low, high = (total - 1) // 2, total // 2
    at = np.searchsorted(cumulative, [low, high], side="right")
    return float(np.mean(items[at]))


def merge_numeric(stats: Sequence[NumericStats]) -> tuple[float, float, float] | None:
    """(median, mean, std) of one column over every shard's training rows, missing values imputed
    with the median; None when no shard has a value. ``std`` is the population deviation, 1.0 when 0."""
    items, weights = [], []
    moments = (0, 0.0, 0.0)
    missing = 0
    for s in stats:
        sketch = kll_doubles_sketch.deserialize(s.sketch)
        for item, weight in sketch:
            items.append(item)
            weights.append(weight)
        moments = combine_moments(moments, (s.count, s.mean, s.m2))
        missing += s.missing
    if not items:
        return None
    median = weighted_median(np.asarray(items, dtype=np.float64), np.asarray(weights, dtype=np.int64))
    n, mean, m2 = combine_moments(moments, (missing, median, 0.0))
    std = float(np.sqrt(m2 / n))
    return median, mean, std if std > 0 else 1.0


@dataclass(frozen=True)
class TrainStats:
    """A shard's contribution to the preprocessor and the report."""

    shard: str
    numeric: tuple[NumericStats, ...]
    train_levels: tuple[tuple[str, ...], ...]  # per categorical column: levels its training rows hold
    missing: dict[str, int]  # per feature column: missing values among the shard's kept rows

    def write(self, folder: Path, host: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        raw = {
            "shard": self.shard,
            "numeric": [
                {
                    "count": s.count,
                    "mean": s.mean,
                    "m2": s.m2,
                    "missing": s.missing,
                    "sketch": base64.b64encode(s.sketch).decode("ascii"),
                }
                for s in self.numeric
            ],
            "train_levels": [list(levels) for levels in self.train_levels],
            "missing": self.missing,
        }
        (folder / f"{host}{STATS_SUFFIX}").write_text(json.dumps(raw) + "\n", encoding="utf-8")

    @classmethod
    def read_all(cls, folder: Path) -> list[TrainStats]:
        """Every host's statistics under ``folder``, ordered by shard (the order every host merges in)."""
        found = []
        for path in sorted(folder.rglob(f"*{STATS_SUFFIX}")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            found.append(
                cls(
                    shard=str(raw["shard"]),
                    numeric=tuple(
                        NumericStats(
                            int(s["count"]),
                            float(s["mean"]),
                            float(s["m2"]),
                            int(s["missing"]),
                            base64.b64decode(s["sketch"]),
                        )
                        for s in raw["numeric"]
                    ),
                    train_levels=tuple(tuple(levels) for levels in raw["train_levels"]),
                    missing={str(k): int(v) for k, v in raw["missing"].items()},
                )
            )
        return sorted(found, key=lambda s: (s.shard == "", s.shard))
