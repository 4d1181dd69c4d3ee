"""The keyed-hash split: independent of row order and of sharding, no group in two splits, stratified
proportions close to the configured ones (property-based)."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rookery_image import splitting

FRACTIONS = (0.7, 0.15, 0.15)
Data = tuple[np.ndarray, list[str | None], np.ndarray]


@st.composite
def datasets(draw: st.DrawFn) -> Data:
    """Rows with a numeric value, a group (some missing) and a label; at least a few of each class."""
    n = draw(st.integers(20, 400))
    groups = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(size=n)
    group = [None if g < 0 else f"g{g}" for g in rng.integers(-3, groups, n).tolist()]
    labels = (rng.uniform(size=n) < draw(st.floats(0.1, 0.9))).astype(np.int8)
    return values, group, labels


def _hashes(values: np.ndarray, group: list[str | None], labels: np.ndarray, seed: int) -> np.ndarray:
    content = splitting.content_hashes(values[:, None], [], labels, seed)
    return splitting.unit_hashes(keys=[splitting.text_hashes(group, seed)], content=content)


def _split(values: np.ndarray, group: list[str | None], labels: np.ndarray, seed: int) -> np.ndarray:
    hashes = _hashes(values, group, labels, seed)
    plan = splitting.plan(splitting.Units.of(hashes, labels), FRACTIONS)
    return splitting.assign(plan, hashes, labels)


@settings(max_examples=60, deadline=None)
@given(datasets(), st.integers(0, 2**31 - 1), st.randoms(use_true_random=False))
def test_the_split_of_a_row_does_not_depend_on_row_order(data: Data, seed: int, rnd: random.Random) -> None:
    values, group, labels = data
    order = list(range(len(labels)))
    rnd.shuffle(order)
    whole = _split(values, group, labels, seed)
    shuffled = _split(values[order], [group[i] for i in order], labels[order], seed)
    assert (shuffled == whole[order]).all()


@settings(max_examples=60, deadline=None)
@given(datasets(), st.integers(0, 2**31 - 1), st.integers(2, 5), st.randoms(use_true_random=False))
def test_shards_merged_give_the_split_of_one_host(
    data: Data, seed: int, shards: int, rnd: random.Random
) -> None:
    """Each shard hashes its rows; the merged units give one plan; each shard assigns its rows with it."""
    values, group, labels = data
    host = [rnd.randrange(shards) for _ in labels]
    rows = [np.flatnonzero(np.array(host) == h) for h in range(shards)]
    hashes = [_hashes(values[r], [group[i] for i in r.tolist()], labels[r], seed) for r in rows]
    units = splitting.Units.merge(
        [splitting.Units.of(h, labels[r]) for h, r in zip(hashes, rows, strict=True)]
    )
    plan = splitting.SplitPlan.from_dict(
        splitting.plan(units, FRACTIONS).to_dict()
    )  # as the merge step ships it
    sharded = np.empty(len(labels), dtype=np.int8)
    for h, r in zip(hashes, rows, strict=True):
        sharded[r] = splitting.assign(plan, h, labels[r])
    assert (sharded == _split(values, group, labels, seed)).all()


@settings(max_examples=60, deadline=None)
@given(datasets(), st.integers(0, 2**31 - 1))
def test_no_group_spans_two_splits_and_proportions_are_close(data: Data, seed: int) -> None:
    values, group, labels = data
    split = _split(values, group, labels, seed)
    seen: dict[str, int] = {}
    for g, s in zip(group, split.tolist(), strict=True):
        if g is not None:
            assert seen.setdefault(g, s) == s, f"group {g} is in two splits"
    # Per stratum, each cut misses its target by at most the rows of the one unit that straddles it.
    hashes = _hashes(values, group, labels, seed)
    units = splitting.Units.of(hashes, labels)
    positive_units = set(units.hashes[units.positives > 0].tolist())
    stratum = np.array([h in positive_units for h in hashes.tolist()])
    largest = int(units.rows.max())
    for members in (stratum, ~stratum):
        total = int(members.sum())
        if not total:
            continue
        reached = np.cumsum([int((split[members] == k).sum()) for k in range(3)])[:2]
        targets = np.round(np.cumsum(FRACTIONS)[:2] * total)
        assert (np.abs(reached - targets) <= largest).all(), (reached, targets, largest)


def test_rows_without_groups_are_cut_exactly() -> None:
    labels = np.array([1] * 40 + [0] * 160, dtype=np.int8)
    split = _split(np.arange(200, dtype=np.float64), [None] * 200, labels, seed=1)
    assert [int((split == k).sum()) for k in range(3)] == [140, 30, 30]
    assert [int(labels[split == k].sum()) for k in range(3)] == [28, 6, 6]


def test_the_seed_keys_the_hash() -> None:
    labels = np.array([0, 1] * 50, dtype=np.int8)
    values = np.arange(100, dtype=np.float64)
    assert not (_split(values, [None] * 100, labels, 1) == _split(values, [None] * 100, labels, 2)).all()
