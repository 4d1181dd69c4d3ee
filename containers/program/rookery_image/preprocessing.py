"""Preprocessing in three jobs, each on any number of instances that read the raw records sharded by S3
key: raw Firehose records in; XGBoost-ready splits, the fitted preprocessor and a report out.

Every job takes the same arguments ``[--split 0.7,0.15,0.15] [--seed 42] [--standardize false]
[--max-invalid-fraction 0.01] [--train-files 1]``:

1. ``preprocess_profile.py`` reads ``processing/input/raw`` (its shard) and writes ``processing/output/
   profile/<host>.*``: the shard's row keys, units, labels, counts and levels.
2. ``preprocess_fit.py`` reads its shard and ``processing/input/profile`` (every host's profile),
   merges them into the plan (the split, the duplicate rule, whole-dataset checks), and writes
   ``processing/output/fit/<host>.stats.json`` (mergeable statistics of its training rows; the first
   host also ``plan.json``).
3. ``preprocess.py`` reads its shard and ``processing/input/fit``, merges the statistics into the
   preprocessor and writes ``processing/output/{train,validation,test,inference,baseline_records}``
   (its share; file names carry the host when there are several) and, on the first host,
   ``{preprocessor,report}`` (see containers/README.md for the layouts).

The split and the preprocessor do not depend on the number of instances (:mod:`rookery_image.sharding`).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import orjson

from rookery_contracts.model_layout import PREPROCESSOR_FILE
from rookery_contracts.schema import DEFAULT_MAX_INVALID_FRACTION, DatasetSchema
from rookery_image import columns, contract, features, records, sharding, splitting
from rookery_image.columns import MISSING_CODE, TextColumn
from rookery_image.contract import UserError

# --train-files: one file per training instance (SageMaker's training instance limit is far below this).
MAX_TRAIN_FILES = 1000
# Below this share of rows the minority class is "strongly unbalanced" and the report says so.
IMBALANCE_FRACTION = 0.2


@dataclass(frozen=True)
class Options:
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    seed: int = 42
    standardize: bool = False
    max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION
    train_files: int = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"preprocess.py arguments: {message}; usage: {self.format_usage().strip()}")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TRAIN_FILES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a file count in 1..{MAX_TRAIN_FILES}")
    return value


def parse_args(argv: Sequence[str]) -> Options:
    parser = _Parser(prog="preprocess.py", add_help=False)
    parser.add_argument("--split", default="0.7,0.15,0.15")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--standardize", type=_bool, default=False)
    parser.add_argument("--max-invalid-fraction", type=float, default=DEFAULT_MAX_INVALID_FRACTION)
    parser.add_argument("--train-files", type=_count, default=1)
    args = parser.parse_args(list(argv))
    try:
        fractions = splitting.parse_fractions(args.split)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not 0.0 <= args.max_invalid_fraction <= 1.0:
        raise UserError(
            f"--max-invalid-fraction {args.max_invalid_fraction:g} must be between 0 and 1, "
            f"e.g. {DEFAULT_MAX_INVALID_FRACTION:g}"
        )
    return Options(
        fractions=fractions,
        seed=args.seed,
        standardize=args.standardize,
        max_invalid_fraction=args.max_invalid_fraction,
        train_files=args.train_files,
    )


@dataclass
class Cleaned:
    """The kept rows, column-wise, with what happened on the way."""

    ids: list[Any] | None
    groups: TextColumn | None  # the group column's values (None when the schema names no group column)
    numeric: np.ndarray  # (n, len(schema.numeric)) float64, NaN = missing
    categories: list[TextColumn]  # one per categorical column
    labels: np.ndarray  # int8, 1 = positive class
    negative_class: str  # "" for one shard's rows: the classes are checked over every shard
    rows_read: int
    dropped: dict[str, int]
    invalid_values: dict[str, int]
    invalid_examples: dict[str, list[str]]
    class_counts: dict[str, int]  # one shard's rows: every class name it holds
    fields: frozenset[str]


def clean_shard(rows: Iterable[Mapping[str, Any]], schema: DatasetSchema) -> Cleaned:
    """Drop rows without a target and copies; coerce feature values. No check that needs every shard
    (:func:`check_columns`, :func:`check_target`, the invalid-value limit): those run on the merge.

    ``rows`` is streamed once: only the schema's columns of each record are kept.
    """
    data = columns.collect(
        rows,
        target=schema.target,
        numeric=schema.numeric,
        categorical=schema.categorical,
        id_column=schema.id_column,
        group_column=schema.group_column,
    )
    target = data.target
    dropped = {"missing_target": data.missing_target}
    # Duplicates: the same record delivered twice (Firehose is at-least-once). First copy wins.
    kept = len(target)
    groups = [] if data.groups is None else [data.groups]
    unique = columns.first_copies(data.numeric, [*data.categorical, target, *groups], data.ids)
    dropped["duplicate"] = kept - len(unique)
    group_column = data.groups
    if len(unique) < kept:
        numeric = data.numeric[unique]
        categories = [col.take(unique) for col in data.categorical]
        ids = None if data.ids is None else [data.ids[j] for j in unique.tolist()]
        target = target.take(unique)
        group_column = None if group_column is None else group_column.take(unique)
    else:
        numeric, categories, ids = data.numeric, data.categorical, data.ids
    if schema.positive_class in target.levels:
        labels = (target.codes == target.levels.index(schema.positive_class)).astype(np.int8)
    else:
        labels = np.zeros(len(target), dtype=np.int8)
    # Levels are in order of first appearance.
    counts = {
        level: count
        for level, count in zip(target.levels, target.counts().tolist(), strict=True)
        if level is not None and count
    }
    return Cleaned(
        ids=ids,
        groups=group_column,
        numeric=numeric,
        categories=categories,
        labels=labels,
        negative_class="",
        rows_read=data.rows_read,
        dropped=dropped,
        invalid_values=data.invalid_values,
        invalid_examples=data.invalid_examples,
        class_counts=counts,
        fields=frozenset(data.fields),
    )


def check_columns(fields: Iterable[str], schema: DatasetSchema) -> None:
    present = set(fields)
    absent = [c for c in (*schema.features, schema.target) if c not in present]
    if absent:
        raise UserError(
            f"columns {absent} of the dataset schema appear in no raw record "
            f"(records have {sorted(present)}); "
            "fix the schema's column names or the producer"
        )


def check_target(counts: Mapping[str, int], schema: DatasetSchema) -> str:
    """The negative class; UserError unless the target has exactly two classes, one the positive."""
    if len(counts) != 2:
        shown = dict(Counter(counts).most_common(10))
        raise UserError(
            f"target {schema.target!r} has {len(counts)} class(es) {shown} "
            "after dropping rows without a target; "
            "rookery trains binary classifiers: the target needs exactly two classes"
        )
    if schema.positive_class not in counts:
        raise UserError(
            f"positive_class {schema.positive_class!r} never occurs in target {schema.target!r} "
            f"(classes: {sorted(c for c in counts if c)}); set positive_class to one of them"
        )
    return next(c for c in counts if c != schema.positive_class)


def clean(rows: Iterable[Mapping[str, Any]], schema: DatasetSchema) -> Cleaned:
    """:func:`clean_shard` of the whole dataset, with the checks that need all of it."""
    data = clean_shard(rows, schema)
    check_columns(data.fields, schema)
    data.negative_class = check_target(data.class_counts, schema)
    positives = int(data.labels.sum())
    data.class_counts = {schema.positive_class: positives, data.negative_class: len(data.labels) - positives}
    return data


def invalid_value_warnings(
    counts: Mapping[str, int],
    examples: Mapping[str, Sequence[str]],
    kept: int,
    schema: DatasetSchema,
    max_fraction: float,
) -> list[str]:
    """One line per column with invalid values (imputed as missing); UserError above the limit.

    ``counts`` and ``kept`` are over the whole dataset: the limit is the dataset's, not a shard's.
    """
    lines: list[str] = []
    over: list[str] = []
    for name, count in counts.items():
        kind = "numbers" if name in schema.numeric else "categories"
        line = (
            f"column {name!r}: {count} of {kept} values ({count / kept:.1%}) are not {kind} "
            f"(e.g. {', '.join(examples.get(name, []))})"
        )
        (over if count / kept > max_fraction else lines).append(line)
    if over:
        raise UserError(
            "invalid values above the limit of "
            f"{max_fraction:.1%} per column (stage ml.max_invalid_fraction):\n  "
            + "\n  ".join(over)
            + "\nfix the producer or the file; or raise the limit to impute them as missing, knowing the "
            "endpoint refuses such values"
        )
    return [f"{line}: imputed as missing" for line in lines]


# --- one shard, and the three passes over shards ---------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One instance's cleaned rows with their keys (:mod:`rookery_image.splitting`)."""

    name: str  # its first raw file: the same whichever instance reads it
    files: tuple[str, ...]
    skipped: tuple[dict[str, str], ...]
    records: int
    data: Cleaned
    units: np.ndarray  # uint64: the row's split unit (group, else id, else content)
    content: np.ndarray  # uint64: the row's content hash (orders rows within a split)
    row_keys: np.ndarray  # uint64: the row's identity across shards
    group_hashes: np.ndarray  # uint64: the shard's distinct groups

    @classmethod
    def of(
        cls,
        data: Cleaned,
        seed: int,
        *,
        files: Sequence[str],
        skipped: Sequence[dict[str, str]] = (),
        records: int | None = None,
    ) -> Shard:
        keys = []
        group_hashes = np.empty(0, dtype=np.uint64)
        if data.groups is not None:
            group = splitting.text_hashes(data.groups.texts(), seed)
            keys.append(group)
            group_hashes = np.unique(group[group != 0])
        if data.ids is not None:
            keys.append(splitting.value_hashes(data.ids, seed))
        content = splitting.content_hashes(
            data.numeric, [col.texts() for col in data.categories], data.labels, seed
        )
        return cls(
            name=files[0] if files else "",
            files=tuple(files),
            skipped=tuple(skipped),
            records=data.rows_read if records is None else records,
            data=data,
            units=splitting.unit_hashes(keys=keys, content=content),
            content=content,
            row_keys=splitting.row_keys(content, keys),
            group_hashes=group_hashes,
        )


def read_shard(folder: Path, schema: DatasetSchema, seed: int) -> Shard:
    """This instance's raw records (all of them on one instance; its ShardedByS3Key share on several)."""
    raw = records.RawReader(folder, require_records=False)
    data = clean_shard(raw, schema)
    return Shard.of(data, seed, files=raw.files, skipped=raw.skipped, records=raw.records)


def profile_of(shard: Shard) -> sharding.Profile:
    data = shard.data
    return sharding.Profile(
        shard=shard.name,
        files=shard.files,
        skipped=shard.skipped,
        records=shard.records,
        rows_read=data.rows_read,
        missing_target=data.dropped["missing_target"],
        duplicates=data.dropped["duplicate"],
        fields=tuple(sorted(data.fields)),
        target_counts=dict(data.class_counts),
        invalid_values=dict(data.invalid_values),
        invalid_examples={k: list(v) for k, v in data.invalid_examples.items()},
        levels=tuple(tuple(sorted(col.used_levels())) for col in data.categories),
        group_hashes=shard.group_hashes,
        row_keys=shard.row_keys,
        units=shard.units,
        labels=data.labels,
    )


def _merged_examples(profiles: Sequence[sharding.Profile]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for p in profiles:
        for name, shown in p.invalid_examples.items():
            kept = merged.setdefault(name, [])
            kept.extend(e for e in shown if e not in kept and len(kept) < columns.INVALID_EXAMPLES)
    return merged


def plan_of(
    profiles: Sequence[sharding.Profile], schema: DatasetSchema, options: Options, *, raw_input: str
) -> sharding.Plan:
    """Merge every shard's profile into the whole dataset's plan, checking the dataset as a whole.

    ``profiles`` come in merge order (:meth:`sharding.Profile.read_all`); every host computes the
    same plan from them.
    """
    records.RawReader.check(sum(len(p.files) for p in profiles), sum(p.records for p in profiles), raw_input)
    check_columns((f for p in profiles for f in p.fields), schema)
    classes: Counter[str] = Counter()
    for p in profiles:
        classes.update(p.target_counts)
    negative = check_target(classes, schema)

    shared_keys, keepers, keep = sharding.shared_rows(profiles)
    units = np.concatenate([p.units for p in profiles])[keep]
    labels = np.concatenate([p.labels for p in profiles])[keep]
    kept = len(labels)
    positives = int(labels.sum())
    class_counts = {schema.positive_class: positives, negative: kept - positives}

    invalid: Counter[str] = Counter()
    for p in profiles:
        invalid.update(p.invalid_values)
    counts = {name: invalid[name] for name in (*schema.numeric, *schema.categorical) if invalid[name]}
    examples = _merged_examples(profiles)
    warnings = invalid_value_warnings(counts, examples, kept, schema, options.max_invalid_fraction)

    split_plan = splitting.plan(splitting.Units.of(units, labels), options.fractions)
    split = splitting.assign(split_plan, units, labels)
    sizes = {}
    for k, name in enumerate(splitting.SPLIT_NAMES):
        rows = int((split == k).sum())
        split_positives = int(labels[split == k].sum())
        if split_positives in (0, rows):
            raise UserError(
                f"the {name} split has {rows} rows and "
                f"{'no' if split_positives == 0 else 'only'} positive rows "
                f"(classes after cleaning: {class_counts}); every split needs both classes: "
                "ingest more data or give that split a larger fraction with --split"
            )
        sizes[name] = {"rows": rows, "positives": split_positives}
    groups = None
    if schema.group_column is not None:
        groups = len(np.unique(np.concatenate([p.group_hashes for p in profiles])))
    summary = {
        "shards": [p.shard for p in profiles],
        "files": {
            "read": sum(len(p.files) for p in profiles),
            "names": sorted(f for p in profiles for f in p.files),
            "skipped": sorted((s for p in profiles for s in p.skipped), key=lambda s: s["path"]),
        },
        "rows": {
            "read": sum(p.rows_read for p in profiles),
            "dropped_missing_target": sum(p.missing_target for p in profiles),
            "dropped_duplicate": sum(p.duplicates for p in profiles) + (len(keep) - kept),
            "out": kept,
        },
        "class_counts": class_counts,
        "invalid_values": {"counts": counts, "examples": examples, "warnings": warnings},
        "split": sizes,
        "groups": groups,
    }
    levels = []
    for k in range(len(schema.categorical)):
        levels.append(tuple(sorted({level for p in profiles for level in p.levels[k]})))
    return sharding.Plan(
        split=split_plan,
        shared_keys=shared_keys,
        keepers=keepers,
        negative_class=negative,
        levels=tuple(levels),
        summary=summary,
    )


def _assigned(shard: Shard, plan: sharding.Plan) -> tuple[np.ndarray, np.ndarray]:
    """The shard's kept rows (indices) and the split of each."""
    idx = np.flatnonzero(plan.kept(shard.name, shard.row_keys))
    return idx, splitting.assign(plan.split, shard.units[idx], shard.data.labels[idx])


def train_stats_of(shard: Shard, plan: sharding.Plan, schema: DatasetSchema) -> sharding.TrainStats:
    """The shard's share of the preprocessor (its training rows) and of the report (its kept rows)."""
    data = shard.data
    idx, split = _assigned(shard, plan)
    train = idx[split == 0]
    missing = {name: int(np.isnan(data.numeric[idx, k]).sum()) for k, name in enumerate(schema.numeric)}
    for k, name in enumerate(schema.categorical):
        missing[name] = int((data.categories[k].codes[idx] == MISSING_CODE).sum())
    return sharding.TrainStats(
        shard=shard.name,
        numeric=tuple(sharding.NumericStats.of(data.numeric[train, k]) for k in range(len(schema.numeric))),
        train_levels=tuple(tuple(sorted(col.take(train).used_levels())) for col in data.categories),
        missing=missing,
    )


def preprocessor_of(
    stats: Sequence[sharding.TrainStats], plan: sharding.Plan, schema: DatasetSchema, options: Options
) -> features.Preprocessor:
    """Every shard's statistics merged into the one preprocessor (the same on every host)."""
    numeric, empty = [], []
    for k, name in enumerate(schema.numeric):
        merged = sharding.merge_numeric([s.numeric[k] for s in stats])
        if merged is None:
            empty.append(name)
            continue
        median, mean, std = merged
        numeric.append(features.NumericColumn(name, median, mean, std))
    if empty:
        raise UserError(
            f"numeric columns {empty} have no values in the training split; "
            "every numeric feature needs values to impute from: drop the column or add data"
        )
    return features.Preprocessor(
        dataset=schema.name,
        target=schema.target,
        positive_class=schema.positive_class,
        negative_class=plan.negative_class,
        id_column=schema.id_column,
        numeric=tuple(numeric),
        categorical=features.categorical_columns(schema.categorical, plan.levels),
        standardize=options.standardize,
    )


def split_parts(shard: Shard, plan: sharding.Plan) -> list[np.ndarray]:
    """The shard's row indices of each split, ordered by hash: neither membership nor order depends on
    input order or on the other shards."""
    idx, split = _assigned(shard, plan)
    order = np.lexsort((shard.content[idx], shard.units[idx]))
    return [idx[order][split[order] == k] for k in range(len(splitting.SPLIT_NAMES))]


def _select(data: Cleaned, idx: np.ndarray) -> tuple[np.ndarray, list[TextColumn]]:
    return data.numeric[idx], [col.take(idx) for col in data.categories]


# Rows encoded and formatted at a time: a split is never a whole matrix in memory, and one
# %-operation formats a whole block (np.savetxt formats row by row).
CSV_BLOCK_ROWS = 8192
# %.9g round-trips float32 exactly: training reads back the very numbers serving computes.
CSV_FORMAT = "%.9g"
# Label and one-hot columns hold only 0 and 1: their text is looked up, not formatted per value.
_ZERO_ONE = np.array([CSV_FORMAT % 0.0, CSV_FORMAT % 1.0], dtype=object)


def _encoded(
    data: Cleaned, pre: features.Preprocessor, idx: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows ``idx`` as (labels, encoded matrix) blocks."""
    for start in range(0, len(idx), CSV_BLOCK_ROWS):
        rows = idx[start : start + CSV_BLOCK_ROWS]
        numeric, categories = _select(data, rows)
        yield data.labels[rows], pre.encode(numeric, categories)


def _write_csv(path: Path, blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
    """Label first, then the matrix: the bytes ``np.savetxt(fmt="%.9g", delimiter=",")`` wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="ascii", newline="") as out:
        for labels, matrix in blocks:
            block = np.column_stack([labels, matrix]).astype(np.float64)
            # -0.0 == 0 but prints as "-0": a column holding one is formatted, not looked up.
            zero_one = ((block == 1) | ((block == 0) & ~np.signbit(block))).all(axis=0)
            cells = np.empty(block.shape, dtype=object)
            cells[:, zero_one] = _ZERO_ONE[block[:, zero_one].astype(np.intp)]
            cells[:, ~zero_one] = block[:, ~zero_one]  # Python floats: "%.9g" formats them as savetxt did
            line = ",".join("%s" if z else CSV_FORMAT for z in zero_one.tolist()) + "\n"
            out.write((line * len(block)) % tuple(cells.ravel().tolist()))


def _write_raw_records(path: Path, data: Cleaned, schema: DatasetSchema, idx: np.ndarray) -> None:
    """The test split as raw records (normalized values, target left out) for batch transform."""
    names: list[str] = []
    values: list[list[Any]] = []
    if data.ids is not None and schema.id_column:
        names.append(schema.id_column)
        values.append([data.ids[i] for i in idx.tolist()])
    names.extend(schema.numeric)
    # orjson writes NaN (a missing number) as null.
    values.extend(data.numeric[idx, k].tolist() for k in range(len(schema.numeric)))
    names.extend(schema.categorical)
    values.extend(col.take(idx).texts() for col in data.categories)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        out.writelines(
            orjson.dumps(dict(zip(names, row, strict=True)), option=orjson.OPT_APPEND_NEWLINE)
            for row in zip(*values, strict=True)
        )


def host_suffix(host: str, hosts: Sequence[str]) -> str:
    """What a host adds to its file names: nothing on one instance; ``-algo-k`` on several, since
    every instance uploads into the same S3 prefix and a shared name would be overwritten."""
    return "" if len(hosts) == 1 else f"-{host}"


def write_shard_splits(
    shard: Shard,
    parts: Sequence[np.ndarray],
    pre: features.Preprocessor,
    options: Options,
    folder: Callable[[str], Path],
    *,
    suffix: str = "",
) -> None:
    """Write ``folder(<split>)/<split><suffix>.csv``; the training split as ``--train-files`` N files
    when N training instances shard it: ``train<suffix>-000k-of-000N.csv`` holds the rows whose row key
    is k-1 modulo N, so training instance k gets the same rows whatever the processing instance count
    (a host's files sort together, and ShardedByS3Key gives instance k file k of every host)."""
    for name, idx in zip(splitting.SPLIT_NAMES, parts, strict=True):
        if name == "train" and options.train_files > 1:
            which = shard.row_keys[idx] % np.uint64(options.train_files)
            for k in range(options.train_files):
                path = folder(name) / f"{name}{suffix}-{k + 1:04d}-of-{options.train_files:04d}.csv"
                _write_csv(path, _encoded(shard.data, pre, idx[which == k]))
            continue
        _write_csv(folder(name) / f"{name}{suffix}.csv", _encoded(shard.data, pre, idx))


def write_splits(
    data: Cleaned, schema: DatasetSchema, options: Options, folder: Callable[[str], Path]
) -> tuple[list[np.ndarray], features.Preprocessor]:
    """The three passes over one in-memory shard (the whole cleaned dataset): split, fit on train,
    write ``folder(<split>)/<split>.csv``."""
    shard = Shard.of(data, options.seed, files=("<memory>",))
    plan = plan_of([profile_of(shard)], schema, options, raw_input="<memory>")
    pre = preprocessor_of([train_stats_of(shard, plan, schema)], plan, schema, options)
    parts = split_parts(shard, plan)
    write_shard_splits(shard, parts, pre, options, folder)
    return parts, pre


def build_report(
    *,
    schema: DatasetSchema,
    plan: sharding.Plan,
    stats: Sequence[sharding.TrainStats],
    pre: features.Preprocessor,
    options: Options,
) -> dict[str, Any]:
    """The data report of the whole dataset, from the plan and every shard's statistics."""
    summary = plan.summary
    rows = summary["rows"]
    kept = rows["out"]
    missing = {}
    for name in (*schema.numeric, *schema.categorical):
        count = sum(s.missing[name] for s in stats)
        missing[name] = {"count": count, "fraction": round(count / kept, 6)}
    train_levels = [
        {level for s in stats for level in s.train_levels[k]} for k in range(len(pre.categorical))
    ]
    not_in_train = {
        col.name: sorted(set(col.levels) - train_levels[k] - {features.MISSING_LEVEL})
        for k, col in enumerate(pre.categorical)
    }
    class_counts = summary["class_counts"]
    positives = class_counts[schema.positive_class]
    minority = min(positives, kept - positives) / kept
    train = summary["split"]["train"]
    suggested = round((train["rows"] - train["positives"]) / train["positives"], 4)
    unbalanced = minority < IMBALANCE_FRACTION
    invalid = summary["invalid_values"]
    return {
        "dataset": schema.name,
        "target": schema.target,
        "positive_class": schema.positive_class,
        "negative_class": plan.negative_class,
        "files": summary["files"],
        "rows": rows,
        "dropped": [
            {
                "reason": "no target value (null, empty or not a class name)",
                "rows": rows["dropped_missing_target"],
            },
            {
                "reason": "duplicate of an earlier record (same id, features and target)",
                "rows": rows["dropped_duplicate"],
            },
        ],
        "missing_values": missing,
        "invalid_values": {
            "counts": invalid["counts"],
            "fractions": {name: round(count / kept, 6) for name, count in invalid["counts"].items()},
            "examples": invalid["examples"],
            "max_fraction": options.max_invalid_fraction,
            "warnings": invalid["warnings"],
            "treatment": (
                "non-numbers in numeric columns and lists/objects count as missing; a column with more "
                "than max_fraction of them fails the job"
            ),
        },
        "imputation": {
            "numeric": {c.name: c.median for c in pre.numeric},
            "categorical": f"missing categories are the explicit level {features.MISSING_LEVEL!r}",
        },
        "class_balance": {
            "counts": class_counts,
            "positive_fraction": round(positives / kept, 6),
            "minority_fraction": round(minority, 6),
            "strongly_unbalanced": unbalanced,
            "imbalance_below": IMBALANCE_FRACTION,
            "suggested_scale_pos_weight": suggested,
            "advice": (
                f"the minority class is {minority:.1%} of rows: set scale_pos_weight = {suggested} "
                "under the stage's [ml.training.hyperparameters] "
                "(negatives / positives in the training split; the other defaults stay) and judge the "
                "model by AUC, PR AUC and the operating point, not accuracy"
                if unbalanced
                else "classes are balanced enough; scale_pos_weight is not needed"
            ),
        },
        "split": {
            "fractions": list(options.fractions),
            "seed": options.seed,
            "stratified": True,
            "method": "keyed hash of each row's unit (group, else id, else content), cut per stratum",
            "group_column": schema.group_column,
            "groups": summary["groups"],
            **summary["split"],
            "instances": len(summary["shards"]),
        },
        "features": {
            "numeric": list(schema.numeric),
            "categorical": {c.name: list(c.levels) for c in pre.categorical},
            "levels_not_in_train": not_in_train,
            "encoded_columns": len(pre.feature_names),
            "standardize": options.standardize,
            "median_rank_error": sharding.median_rank_error(),
        },
    }


# --- the three jobs -------------------------------------------------------------------------------

RAW_INPUT = "raw"
PROFILE = "profile"  # the Profile job's output, the Fit job's input
FIT = "fit"  # the Fit job's output, the Preprocess job's input


def _this_shard(where: contract.Paths, schema: DatasetSchema, options: Options) -> tuple[Shard, str, bool]:
    """This instance's shard, its host name and whether it is the job's first host."""
    hosts = contract.read_resource_config(where, processing=True)
    return (
        read_shard(where.processing_input(RAW_INPUT), schema, options.seed),
        hosts.current_host,
        (hosts.current_host == hosts.hosts[0]),
    )


def run_profile(argv: Sequence[str], where: contract.Paths) -> sharding.Profile:
    """Pass 1 (Profile): clean this instance's shard and write what Fit merges."""
    options = parse_args(argv)
    schema = contract.dataset_schema()
    shard, host, _ = _this_shard(where, schema, options)
    profile = profile_of(shard)
    profile.write(where.processing_output(PROFILE), host)
    return profile


def run_fit(argv: Sequence[str], where: contract.Paths) -> tuple[sharding.Plan, sharding.TrainStats]:
    """Pass 2 (Fit): merge every profile into the plan; write this shard's training statistics (and,
    on the first host, the plan)."""
    options = parse_args(argv)
    schema = contract.dataset_schema()
    folder = where.processing_input(PROFILE)
    profiles = sharding.Profile.read_all(folder) if folder.is_dir() else []
    if not profiles:
        raise UserError(
            f"no profiles under {folder}; map the Profile step's output {PROFILE!r} (every instance's "
            f"files) to the processing input {PROFILE!r}"
        )
    plan = plan_of(profiles, schema, options, raw_input=str(where.processing_input(RAW_INPUT)))
    shard, host, first = _this_shard(where, schema, options)
    if shard.name not in plan.summary["shards"]:
        raise UserError(
            f"this instance's raw shard (first file {shard.name!r}) has no profile (profiles of "
            f"{plan.summary['shards']}); run Profile and Fit on the same raw input and instance count"
        )
    stats = train_stats_of(shard, plan, schema)
    out = where.processing_output(FIT)
    stats.write(out, host)
    if first:
        (out / sharding.PLAN_FILE).write_text(json.dumps(plan.to_dict()) + "\n", encoding="utf-8")
    return plan, stats


def run(argv: Sequence[str], where: contract.Paths) -> dict[str, Any]:
    """Pass 3 (Preprocess): merge every shard's statistics into the preprocessor; write this shard's
    splits (and, on the first host, the preprocessor and the data report). Returns the report."""
    options = parse_args(argv)
    schema = contract.dataset_schema()
    folder = where.processing_input(FIT)
    plan_path = folder / sharding.PLAN_FILE
    if not plan_path.is_file():
        raise UserError(
            f"no {sharding.PLAN_FILE} under {folder}; map the Fit step's output {FIT!r} to the "
            f"processing input {FIT!r}"
        )
    plan = sharding.Plan.from_dict(json.loads(plan_path.read_text(encoding="utf-8")))
    stats = sharding.TrainStats.read_all(folder)
    if [s.shard for s in stats] != plan.summary["shards"]:
        raise UserError(
            f"the Fit output holds statistics of shards {[s.shard for s in stats]} but the plan has "
            f"{plan.summary['shards']}; run Profile, Fit and Preprocess on the same input and instance count"
        )
    shard, host, first = _this_shard(where, schema, options)
    hosts = contract.read_resource_config(where, processing=True).hosts
    pre = preprocessor_of(stats, plan, schema, options)
    parts = split_parts(shard, plan)
    out = where.processing_output
    suffix = host_suffix(host, hosts)
    write_shard_splits(shard, parts, pre, options, out, suffix=suffix)
    _write_raw_records(out("inference") / f"test{suffix}.jsonl", shard.data, schema, parts[2])
    # The training split as raw records: the Baseline step profiles what the model learned from.
    _write_raw_records(out("baseline_records") / f"train{suffix}.jsonl", shard.data, schema, parts[0])
    for name in ("preprocessor", "report"):
        out(name).mkdir(parents=True, exist_ok=True)  # every host uploads its folders, the first fills them
    report = build_report(schema=schema, plan=plan, stats=stats, pre=pre, options=options)
    if first:
        artifact = out("preprocessor") / PREPROCESSOR_FILE
        artifact.write_text(json.dumps(pre.to_dict(), indent=2) + "\n", encoding="utf-8")
        (out("report") / "data_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"preprocess: {host} wrote {[len(p) for p in parts]} rows of its shard "
        f"({len(shard.files)} file(s)) to {list(splitting.SPLIT_NAMES)}",
        flush=True,
    )
    return report


def main_profile(argv: Sequence[str]) -> int:
    def job() -> None:
        profile = run_profile(argv, contract.paths())
        print(
            f"profile: read {profile.rows_read} records from {len(profile.files)} file(s); "
            f"kept {len(profile.labels)} (dropped {profile.missing_target} without target, "
            f"{profile.duplicates} duplicates in this shard)",
            flush=True,
        )

    return contract.run_job("profile", job)


def main_fit(argv: Sequence[str]) -> int:
    def job() -> None:
        plan, _ = run_fit(argv, contract.paths())
        split = plan.summary["split"]
        print(
            f"fit: merged {len(plan.summary['shards'])} profile(s), {plan.summary['rows']['out']} rows; "
            f"split {[split[n]['rows'] for n in splitting.SPLIT_NAMES]}",
            flush=True,
        )

    return contract.run_job("fit", job)


def main(argv: Sequence[str]) -> int:
    def job() -> None:
        report = run(argv, contract.paths())
        rows, balance = report["rows"], report["class_balance"]
        print(
            f"preprocess: read {rows['read']} records from {report['files']['read']} file(s); "
            f"kept {rows['out']} (dropped {rows['dropped_missing_target']} without target, "
            f"{rows['dropped_duplicate']} duplicates); "
            f"split {[report['split'][n]['rows'] for n in splitting.SPLIT_NAMES]}",
            flush=True,
        )
        for warning in report["invalid_values"]["warnings"]:
            print(f"preprocess: WARNING {warning}", flush=True)
        if balance["strongly_unbalanced"]:
            print(f"preprocess: WARNING strongly unbalanced target: {balance['advice']}", flush=True)

    return contract.run_job("preprocess", job)
