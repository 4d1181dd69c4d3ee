"""Train/validation/test split by a keyed hash: the same rows land in the same split however the data
is ordered or sharded over instances, and no group is split.

Each row belongs to a *unit*: its group (the schema's ``group_column``), else its id, else its own
content; a row whose group or id is missing is a unit of its own. A unit's 64-bit hash is keyed by the
split seed (:func:`unit_hashes`), so it depends on the unit's values and the seed only, never on where
the row sits. Within each stratum (units with a positive row, units without), units are ordered by
hash and cut where the cumulative row count reaches the configured fractions (:func:`plan`): the
split is stratified, and exact (700/150/150 of 1000 rows) when every unit is one row. Cutting needs
every unit's hash; assigning a row needs only the cut points (:class:`SplitPlan`, :func:`assign`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

SPLIT_NAMES = ("train", "validation", "test")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
NO_UNIT = 0  # below every unit hash (they are 1 .. 2**63): the cut point of an empty split


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


# --- hashing ------------------------------------------------------------------------------------


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def _key(seed: int) -> bytes:
    return hashlib.sha256(f"rookery-split/{seed}".encode()).digest()[:32]


def _text_hash(text: bytes, key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text, key=key, digest_size=8).digest(), "little")


def _finish(hashed: np.ndarray) -> np.ndarray:
    """Into 1 .. 2**63, so NO_UNIT (0) sorts below every unit."""
    return (hashed >> np.uint64(1)) + np.uint64(1)


def text_hashes(texts: Sequence[str | None], seed: int) -> np.ndarray:
    """Keyed hashes of text values (uint64, 0 where a value is missing), each distinct text hashed once."""
    key = _key(seed)
    memo: dict[str, int] = {}
    out = np.zeros(len(texts), dtype=np.uint64)
    for i, text in enumerate(texts):
        if text is None:
            continue
        value = memo.get(text)
        if value is None:
            value = memo[text] = _text_hash(text.encode(), key)
        out[i] = value
    return _finish(out) * (out != 0)


def value_hashes(values: Sequence[Any], seed: int) -> np.ndarray:
    """Keyed hashes of JSON values (ids), 0 where a value is missing (None)."""
    key = _key(seed)
    out = np.fromiter(
        (0 if v is None else _text_hash(orjson.dumps(v), key) for v in values),
        dtype=np.uint64,
        count=len(values),
    )
    return _finish(out) * (out != 0)


def content_hashes(
    numeric: np.ndarray, texts: Sequence[Sequence[str | None]], labels: np.ndarray, seed: int
) -> np.ndarray:
    """Keyed hashes of whole rows: their numbers (every NaN alike, -0.0 as 0.0), texts and label.

    Texts are hashed by value, never by the codes one shard happened to give them.
    """
    hashed = np.full(len(labels), _GOLDEN, dtype=np.uint64) ^ np.uint64(
        int.from_bytes(_key(seed)[:8], "little")
    )
    for k in range(numeric.shape[1]):
        canonical = numeric[:, k] + 0.0
        canonical[np.isnan(canonical)] = np.nan
        hashed = _mix(hashed ^ canonical.view(np.uint64)) + _GOLDEN
    for column in texts:
        hashed = _mix(hashed ^ text_hashes(column, seed)) + _GOLDEN
    hashed = _mix(hashed ^ labels.astype(np.uint64)) + _GOLDEN
    return _finish(hashed)


def row_keys(content: np.ndarray, keys: Sequence[np.ndarray]) -> np.ndarray:
    """Each row's identity across shards: its content hash mixed with its group and id hashes.

    Two rows share a key when they are copies (same numbers, texts, label, group and id); two
    different rows share one with probability about 2**-63 per pair.
    """
    hashed = content.copy()
    for key in keys:
        hashed = _mix(hashed ^ key) + _GOLDEN
    return _finish(hashed)


def unit_hashes(*, keys: Sequence[np.ndarray], content: np.ndarray) -> np.ndarray:
    """Each row's unit: the first of ``keys`` (group, then id hashes) not missing, else its content."""
    out = content.copy()
    for key in reversed(keys):
        out = np.where(key != 0, key, out)
    return out


# --- the cut --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """Every unit once: its hash, its rows and its positive rows (sorted by hash)."""

    hashes: np.ndarray  # uint64, ascending, unique
    rows: np.ndarray  # int64
    positives: np.ndarray  # int64

    @classmethod
    def of(cls, hashes: np.ndarray, labels: np.ndarray) -> Units:
        unique, inverse = np.unique(hashes, return_inverse=True)
        rows = np.bincount(inverse, minlength=len(unique)).astype(np.int64)
        positives = np.bincount(inverse, weights=labels, minlength=len(unique)).astype(np.int64)
        return cls(unique, rows, positives)

    @classmethod
    def merge(cls, parts: Sequence[Units]) -> Units:
        """The units of several shards: a unit seen by several shards adds up its rows and positives."""
        hashes = np.concatenate([p.hashes for p in parts]) if parts else np.empty(0, np.uint64)
        unique, inverse = np.unique(hashes, return_inverse=True)
        rows = np.bincount(inverse, np.concatenate([p.rows for p in parts]) if parts else None, len(unique))
        positives = np.bincount(
            inverse, np.concatenate([p.positives for p in parts]) if parts else None, len(unique)
        )
        return cls(unique, rows.astype(np.int64), positives.astype(np.int64))


@dataclass(frozen=True)
class SplitPlan:
    """Where each stratum is cut: a unit with hash <= cuts[s][0] trains, <= cuts[s][1] validates, else tests.

    ``positive_units`` holds the hashes of units of several rows with a positive row: such a unit
    is in the positive stratum even on a shard that sees only its negative rows.
    """

    fractions: tuple[float, float, float]
    cuts: tuple[tuple[int, int], tuple[int, int]]  # stratum 0 (no positive row), stratum 1
    positive_units: np.ndarray  # uint64, ascending

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": list(self.fractions),
            "cuts": [list(c) for c in self.cuts],
            "positive_units": self.positive_units.tolist(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SplitPlan:
        f = [float(v) for v in raw["fractions"]]
        (a, b), (c, d) = ((int(x), int(y)) for x, y in raw["cuts"])
        return cls((f[0], f[1], f[2]), ((a, b), (c, d)), np.asarray(raw["positive_units"], dtype=np.uint64))


def plan(units: Units, fractions: Sequence[float]) -> SplitPlan:
    """Cut each stratum's units, in hash order, where the cumulative rows reach the fractions."""
    bounds = np.cumsum(fractions)[:-1]
    positive = units.positives > 0
    cuts = []
    for stratum in (~positive, positive):
        hashes, rows = units.hashes[stratum], units.rows[stratum]
        cumulative = np.cumsum(rows)
        targets = np.round(bounds * (cumulative[-1] if len(cumulative) else 0))
        ends = np.searchsorted(cumulative, targets, side="right")  # units whose rows fit below the target
        cuts.append(tuple(int(hashes[e - 1]) if e else NO_UNIT for e in ends.tolist()))
    several = positive & (units.rows > 1)
    f = tuple(float(v) for v in fractions)
    return SplitPlan((f[0], f[1], f[2]), (cuts[0], cuts[1]), units.hashes[several])  # type: ignore[arg-type]


def assign(split_plan: SplitPlan, hashes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The split (0 train, 1 validation, 2 test) of each row, from its unit hash and its label."""
    known = split_plan.positive_units
    in_positive_unit = np.isin(hashes, known) if len(known) else np.zeros(len(hashes), dtype=bool)
    stratum = (labels.astype(bool) | in_positive_unit).astype(np.intp)
    cuts = np.array(split_plan.cuts, dtype=np.uint64)[stratum]
    return (hashes > cuts[:, 0]).astype(np.int8) + (hashes > cuts[:, 1]).astype(np.int8)
