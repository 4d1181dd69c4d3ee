"""The three preprocessing passes over shards: however the rows are spread over however many hosts, the
plan, the split of every row, the counts and levels are those of one host, the medians equal (exact
mode) or within the KLL rank error, means and deviations equal to float rounding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rookery_contracts.schema import DatasetSchema
from rookery_image import features, preprocessing, sharding, splitting
from rookery_image.contract import UserError

SCHEMA = DatasetSchema("visits", "churned", "yes", ("spend", "age"), ("plan", "region"), None)
GROUPED = DatasetSchema(
    "visits", "churned", "yes", ("spend", "age"), ("plan", "region"), "visit_id", group_column="person"
)
# Means and deviations are merged with Chan's update: equal to numpy's up to rounding.
MOMENT_RTOL = 1e-9


def records(n: int, seed: int, *, people: int = 40, invalid: float = 0.0) -> list[dict[str, Any]]:
    """Raw records with missing values, some copies, a group and an id; both classes."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        person = int(rng.integers(people))
        spend: Any = None if rng.uniform() < 0.1 else round(float(rng.gamma(2.0, 30.0)), 2)
        if rng.uniform() < invalid:
            spend = "n/a"
        rows.append(
            {
                "visit_id": f"v{i}",
                "person": f"p{person}",
                "spend": spend,
                "age": None if rng.uniform() < 0.05 else int(rng.integers(18, 80)),
                "plan": ["basic", "plus", "pro", None][int(rng.integers(4))],
                "region": f"r{int(rng.integers(6))}",
                "churned": "yes" if rng.uniform() < 0.3 + 0.01 * (person % 20) else "no",
            }
        )
    copies = [dict(rows[int(j)]) for j in rng.integers(0, n, n // 10)]  # at-least-once delivery
    return rows + copies


@dataclass
class Passes:
    plan: sharding.Plan
    pre: features.Preprocessor
    stats: list[sharding.TrainStats]
    shards: list[preprocessing.Shard]
    parts: list[list[np.ndarray]]

    def membership(self) -> dict[int, int]:
        """Row key -> split, over every shard's written rows (each kept row once)."""
        found: dict[int, int] = {}
        for shard, parts in zip(self.shards, self.parts, strict=True):
            for k, idx in enumerate(parts):
                for key in shard.row_keys[idx].tolist():
                    assert key not in found, "a row is written by two shards"
                    found[key] = k
        return found


def passes(
    shards: Sequence[Sequence[dict[str, Any]]], schema: DatasetSchema, options: preprocessing.Options
) -> Passes:
    """Profile, Fit and Preprocess over in-memory shards, each shard its own files."""
    cleaned = [
        preprocessing.Shard.of(
            preprocessing.clean_shard(iter(rows), schema), options.seed, files=[f"part-{i:03d}"]
        )
        for i, rows in enumerate(shards)
    ]
    # Fit reads the profiles back in merge order, whatever order the hosts wrote them in.
    profiles = sorted((preprocessing.profile_of(s) for s in reversed(cleaned)), key=lambda p: p.shard)
    plan = preprocessing.plan_of(profiles, schema, options, raw_input="raw")
    stats = [preprocessing.train_stats_of(s, plan, schema) for s in cleaned]
    pre = preprocessing.preprocessor_of(stats, plan, schema, options)
    return Passes(plan, pre, stats, cleaned, [preprocessing.split_parts(s, plan) for s in cleaned])


def sharded(rows: Sequence[dict[str, Any]], hosts: int, rnd: random.Random) -> list[list[dict[str, Any]]]:
    """Rows spread over ``hosts`` at random (a host may get none)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(hosts)]
    for row in rows:
        out[rnd.randrange(hosts)].append(row)
    return out


def assert_same_as_one_host(one: Passes, many: Passes) -> None:
    assert many.plan.split.to_dict() == one.plan.split.to_dict()
    assert many.membership() == one.membership()
    summary = {k: v for k, v in many.plan.summary.items() if k != "shards"}
    assert summary["files"]["read"] == len(many.shards)
    assert {k: v for k, v in summary.items() if k != "files"} == {
        k: v for k, v in one.plan.summary.items() if k not in ("shards", "files")
    }
    # Exact: levels, medians (exact mode: fewer than SKETCH_K values), every count.
    assert [c.levels for c in many.pre.categorical] == [c.levels for c in one.pre.categorical]
    assert [c.median for c in many.pre.numeric] == [c.median for c in one.pre.numeric]
    for name in ("missing",):
        assert {k: sum(getattr(s, name)[k] for s in many.stats) for k in one.stats[0].missing} == one.stats[
            0
        ].missing
    assert [sum(s.numeric[k].count for s in many.stats) for k in range(2)] == [
        one.stats[0].numeric[k].count for k in range(2)
    ]
    for a, b in zip(many.pre.numeric, one.pre.numeric, strict=True):
        assert a.mean == pytest.approx(b.mean, rel=MOMENT_RTOL)
        assert a.std == pytest.approx(b.std, rel=MOMENT_RTOL)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(60, 400),
    st.integers(0, 2**31 - 1),
    st.integers(1, 6),
    st.tuples(st.booleans(), st.booleans()),
    st.randoms(use_true_random=False),
)
def test_any_sharding_gives_the_plan_split_and_exact_statistics_of_one_host(
    n: int, seed: int, hosts: int, flags: tuple[bool, bool], rnd: random.Random
) -> None:
    grouped, standardize = flags
    schema = GROUPED if grouped else SCHEMA
    rows = records(n, seed)
    options = preprocessing.Options(seed=seed % 1000, standardize=standardize)
    try:
        one = passes([rows], schema, options)
    except UserError:  # a split without both classes: the property is about data one host accepts
        assume(False)
        raise
    assert_same_as_one_host(one, passes(sharded(rows, hosts, rnd), schema, options))


def test_one_shard_is_the_single_pass_preprocessing_of_the_whole_data() -> None:
    """The preprocessor of one shard is what fitting on the whole cleaned data gives (numpy)."""
    rows = records(500, 3)
    options = preprocessing.Options(seed=4, standardize=True)
    data = preprocessing.clean(iter(rows), SCHEMA)
    one = passes([rows], SCHEMA, options)
    train = one.parts[0][0]
    reference = features.fit(
        dataset=SCHEMA.name,
        target=SCHEMA.target,
        positive_class=SCHEMA.positive_class,
        negative_class=data.negative_class,
        id_column=None,
        numeric_names=SCHEMA.numeric,
        numeric_train=data.numeric[train],
        categorical_names=SCHEMA.categorical,
        categorical_levels=[c.used_levels() for c in data.categories],
        standardize=True,
    )
    assert [c.median for c in one.pre.numeric] == [c.median for c in reference.numeric]
    assert one.pre.categorical == reference.categorical
    for a, b in zip(one.pre.numeric, reference.numeric, strict=True):
        assert a.mean == pytest.approx(b.mean, rel=MOMENT_RTOL)
        assert a.std == pytest.approx(b.std, rel=MOMENT_RTOL)


@pytest.mark.parametrize("hosts", [2, 3])
def test_copies_on_different_shards_are_kept_once(hosts: int) -> None:
    rows = records(300, 8)
    options = preprocessing.Options(seed=1)
    one = passes([rows], SCHEMA, options)
    # Every shard gets every row: all but one copy of each is a duplicate.
    many = passes([rows] * hosts, SCHEMA, options)
    assert many.membership() == one.membership()
    dropped = one.plan.summary["rows"]["dropped_duplicate"]
    assert many.plan.summary["rows"]["dropped_duplicate"] == dropped * hosts + one.plan.summary["rows"][
        "out"
    ] * (hosts - 1)
    assert many.plan.summary["rows"]["out"] == one.plan.summary["rows"]["out"]


def test_medians_beyond_the_sketch_size_are_within_its_rank_error() -> None:
    """With a small k (estimation mode) the merged median's rank is within the bound of the true one."""
    k = 200
    rng = np.random.default_rng(5)
    values = rng.lognormal(size=30_000)
    shards = np.array_split(values, 3)
    stats = []
    for part in shards:
        s = sharding.NumericStats.of(part, k=k)
        stats.append(s)
    merged = sharding.merge_numeric(stats)
    assert merged is not None
    rank = float((values < merged[0]).mean())
    assert abs(rank - 0.5) <= sharding.median_rank_error(k)
    assert merged[1] == pytest.approx(values.mean(), rel=MOMENT_RTOL)
    assert merged[2] == pytest.approx(values.std(), rel=MOMENT_RTOL)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.integers(1, 4))
def test_the_merged_median_in_exact_mode_is_numpys(values: list[float], shards: int) -> None:
    array = np.asarray(values)
    stats = [sharding.NumericStats.of(part) for part in np.array_split(array, shards)]
    merged = sharding.merge_numeric(stats)
    assert merged is not None
    assert merged[0] == float(np.median(array))


def test_the_invalid_value_limit_is_the_whole_datasets_not_a_shards() -> None:
    """One shard with 30% invalid numbers passes when the dataset as a whole is under the limit, and a
    dataset over it fails naming the whole dataset's counts."""
    clean_rows = records(900, 2)
    dirty_rows = records(100, 3, invalid=0.3)
    for row in dirty_rows:
        row["visit_id"] = f"d-{row['visit_id']}"
    options = preprocessing.Options(seed=2, max_invalid_fraction=0.05)
    done = passes([clean_rows, dirty_rows], SCHEMA, options)
    invalid = done.plan.summary["invalid_values"]["counts"]["spend"]
    assert 0.05 * 100 < invalid < 0.05 * done.plan.summary["rows"]["out"], "over the limit in one shard only"
    assert done.plan.summary["invalid_values"]["warnings"]

    strict = preprocessing.Options(seed=2, max_invalid_fraction=0.01)
    with pytest.raises(UserError) as raised:
        passes([clean_rows, dirty_rows], SCHEMA, strict)
    kept = done.plan.summary["rows"]["out"]
    assert f"column 'spend': {invalid} of {kept} values" in str(raised.value)


def test_the_target_check_sees_every_shard() -> None:
    """A shard holding one class is fine; the dataset needs both."""
    rows = records(400, 6)
    yes = [r for r in rows if r["churned"] == "yes"]
    no = [r for r in rows if r["churned"] == "no"]
    options = preprocessing.Options(seed=3)
    assert_same_as_one_host(passes([rows], SCHEMA, options), passes([yes, no], SCHEMA, options))
    with pytest.raises(UserError, match="has 1 class"):
        passes([no, []], SCHEMA, options)


def test_no_records_on_any_shard_is_the_single_host_error() -> None:
    with pytest.raises(UserError, match="holds no data files"):
        preprocessing.plan_of([], SCHEMA, preprocessing.Options(), raw_input="raw")


def test_the_plan_and_statistics_survive_their_files(tmp_path: Any) -> None:
    rows = records(300, 9)
    options = preprocessing.Options(seed=5)
    done = passes(sharded(rows, 3, random.Random(1)), GROUPED, options)
    for i, (shard, stats) in enumerate(zip(done.shards, done.stats, strict=True)):
        preprocessing.profile_of(shard).write(tmp_path / "profile", f"algo-{i + 1}")
        stats.write(tmp_path / "fit", f"algo-{i + 1}")
    profiles = sharding.Profile.read_all(tmp_path / "profile")
    again = preprocessing.plan_of(profiles, GROUPED, options, raw_input="raw")
    assert sharding.Plan.from_dict(again.to_dict()).to_dict() == done.plan.to_dict()
    read = sharding.TrainStats.read_all(tmp_path / "fit")
    assert preprocessing.preprocessor_of(read, again, GROUPED, options) == done.pre
    assert splitting.SplitPlan.from_dict(again.split.to_dict()) is not None


@pytest.mark.parametrize("hosts", [2, 3])
def test_each_training_file_number_holds_the_same_rows_on_any_number_of_hosts(
    hosts: int, tmp_path: Any
) -> None:
    """ShardedByS3Key gives training instance k file k of every processing host: the rows it trains
    on do not depend on the processing instance count."""
    rows = records(400, 12)
    options = preprocessing.Options(seed=7, train_files=3)

    def files(shards: list[list[dict[str, Any]]], folder: Any) -> dict[int, list[str]]:
        done = passes(shards, SCHEMA, options)
        by_file: dict[int, list[str]] = {1: [], 2: [], 3: []}
        for i, (shard, parts) in enumerate(zip(done.shards, done.parts, strict=True)):
            suffix = preprocessing.host_suffix(f"algo-{i + 1}", [f"algo-{j + 1}" for j in range(len(shards))])
            preprocessing.write_shard_splits(
                shard, parts, done.pre, options, lambda n: folder / n, suffix=suffix
            )
            for k in by_file:
                path = folder / "train" / f"train{suffix}-{k:04d}-of-0003.csv"
                by_file[k] += path.read_text().splitlines()
        return {k: sorted(v) for k, v in by_file.items()}

    one = files([rows], tmp_path / "one")
    assert all(one.values()), "every training instance gets rows"
    assert files(sharded(rows, hosts, random.Random(hosts)), tmp_path / "many") == one
