"""Preprocess job: raw Firehose records in; XGBoost-ready splits, the fitted preprocessor and a report out.

``python3 /opt/program/preprocess.py [--split 0.7,0.15,0.15] [--seed 42] [--standardize false]
[--max-invalid-fraction 0.01] [--train-files 1]``
reads ``processing/input/raw`` and writes ``processing/output/{train,validation,test,inference,
preprocessor,report,baseline_records}`` (see containers/README.md for the layouts).
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
from rookery_image import columns, contract, features, records, splitting
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
    negative_class: str
    rows_read: int
    dropped: dict[str, int]
    invalid_values: dict[str, int]
    invalid_examples: dict[str, list[str]]
    class_counts: dict[str, int]


def clean(rows: Iterable[Mapping[str, Any]], schema: DatasetSchema) -> Cleaned:
    """Drop rows without a target and duplicates; check the target is binary; coerce feature values.

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
    present = data.fields
    absent = [c for c in (*schema.features, schema.target) if c not in present]
    if absent:
        raise UserError(
            f"columns {absent} of the dataset schema appear in no raw record "
            f"(records have {sorted(present)}); "
            "fix the schema's column names or the producer"
        )

    target = data.target
    dropped = {"missing_target": data.missing_target}
    # Levels are in order of first appearance, as the classes were counted before.
    counts = Counter(
        {
            level: count
            for level, count in zip(target.levels, target.counts().tolist(), strict=True)
            if level is not None and count
        }
    )
    if len(counts) != 2:
        shown = dict(counts.most_common(10))
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
    negative = next(c for c in counts if c != schema.positive_class)

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
    labels = (target.codes == target.levels.index(schema.positive_class)).astype(np.int8)
    positives = int(labels.sum())
    return Cleaned(
        ids=ids,
        groups=group_column,
        numeric=numeric,
        categories=categories,
        labels=labels,
        negative_class=negative,
        rows_read=data.rows_read,
        dropped=dropped,
        invalid_values=data.invalid_values,
        invalid_examples=data.invalid_examples,
        class_counts={schema.positive_class: positives, negative: len(labels) - positives},
    )


def invalid_value_warnings(data: Cleaned, schema: DatasetSchema, options: Options) -> list[str]:
    """One line per column with invalid values (imputed as missing); UserError above the limit."""
    kept = len(data.labels)
    lines: list[str] = []
    over: list[str] = []
    for name, count in data.invalid_values.items():
        kind = "numbers" if name in schema.numeric else "categories"
        line = (
            f"column {name!r}: {count} of {kept} values ({count / kept:.1%}) are not {kind} "
            f"(e.g. {', '.join(data.invalid_examples.get(name, []))})"
        )
        (over if count / kept > options.max_invalid_fraction else lines).append(line)
    if over:
        raise UserError(
            "invalid values above the limit of "
            f"{options.max_invalid_fraction:.1%} per column (stage ml.max_invalid_fraction):\n  "
            + "\n  ".join(over)
            + "\nfix the producer or the file; or raise the limit to impute them as missing, knowing the "
            "endpoint refuses such values"
        )
    return [f"{line}: imputed as missing" for line in lines]


def unit_hashes(data: Cleaned, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's split unit (:mod:`rookery_image.splitting`: its group, else its id, else its content)
    and its content hash."""
    keys = []
    if data.groups is not None:
        keys.append(splitting.text_hashes(data.groups.texts(), seed))
    if data.ids is not None:
        keys.append(splitting.value_hashes(data.ids, seed))
    content = splitting.content_hashes(
        data.numeric, [col.texts() for col in data.categories], data.labels, seed
    )
    return splitting.unit_hashes(keys=keys, content=content), content


def split_rows(data: Cleaned, options: Options) -> list[np.ndarray]:
    """Row indices of each split, ordered by hash: neither membership nor order depends on input order."""
    units, content = unit_hashes(data, options.seed)
    plan = splitting.plan(splitting.Units.of(units, data.labels), options.fractions)
    split = splitting.assign(plan, units, data.labels)
    order = np.lexsort((content, units))
    parts = [order[split[order] == k] for k in range(len(splitting.SPLIT_NAMES))]
    for name, idx in zip(splitting.SPLIT_NAMES, parts, strict=True):
        positives = int(data.labels[idx].sum())
        if positives == 0 or positives == len(idx):
            raise UserError(
                f"the {name} split has {len(idx)} rows and "
                f"{'no' if positives == 0 else 'only'} positive rows "
                f"(classes after cleaning: {data.class_counts}); every split needs both classes: "
                "ingest more data or give that split a larger fraction with --split"
            )
    return parts


def _select(data: Cleaned, idx: np.ndarray) -> tuple[np.ndarray, list[TextColumn]]:
    return data.numeric[idx], [col.take(idx) for col in data.categories]


def _fit(
    schema: DatasetSchema, data: Cleaned, train_idx: np.ndarray, options: Options
) -> features.Preprocessor:
    """Fit the preprocessor on the training rows (levels: every level of the cleaned data)."""
    train_numeric, _ = _select(data, train_idx)
    try:
        return features.fit(
            dataset=schema.name,
            target=schema.target,
            positive_class=schema.positive_class,
            negative_class=data.negative_class,
            id_column=schema.id_column,
            numeric_names=schema.numeric,
            numeric_train=train_numeric,
            categorical_names=schema.categorical,
            categorical_levels=[col.used_levels() for col in data.categories],
            standardize=options.standardize,
        )
    except ValueError as exc:
        raise UserError(
            f"{exc}; every numeric feature needs values to impute from: drop the column or add data"
        ) from None


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


def write_splits(
    data: Cleaned, schema: DatasetSchema, options: Options, folder: Callable[[str], Path]
) -> tuple[list[np.ndarray], features.Preprocessor]:
    """Split the cleaned rows, fit the preprocessor on train, write ``folder(<split>)/<split>.csv``
    (train as ``--train-files`` files when several training instances shard it)."""
    parts = split_rows(data, options)
    pre = _fit(schema, data, parts[0], options)
    for name, idx in zip(splitting.SPLIT_NAMES, parts, strict=True):
        if name == "train" and options.train_files > 1:
            # One file per training instance, for ShardedByS3Key: every file gets rows of every stretch.
            for k in range(options.train_files):
                path = folder(name) / f"{name}-{k + 1:04d}-of-{options.train_files:04d}.csv"
                _write_csv(path, _encoded(data, pre, idx[k :: options.train_files]))
            continue
        _write_csv(folder(name) / f"{name}.csv", _encoded(data, pre, idx))
    return parts, pre


def build_report(
    *,
    schema: DatasetSchema,
    raw: records.RawReader,
    data: Cleaned,
    parts: list[np.ndarray],
    pre: features.Preprocessor,
    options: Options,
) -> dict[str, Any]:
    kept = len(data.labels)
    missing = {}
    for k, name in enumerate(schema.numeric):
        count = int(np.isnan(data.numeric[:, k]).sum())
        missing[name] = {"count": count, "fraction": round(count / kept, 6)}
    for k, name in enumerate(schema.categorical):
        count = int(data.categories[k].counts()[MISSING_CODE])
        missing[name] = {"count": count, "fraction": round(count / kept, 6)}
    train_idx = parts[0]
    train_levels = [set(col.take(train_idx).used_levels()) for col in data.categories]
    not_in_train = {
        col.name: sorted(set(col.levels) - train_levels[k] - {features.MISSING_LEVEL})
        for k, col in enumerate(pre.categorical)
    }
    positives = int(data.labels.sum())
    minority = min(positives, kept - positives) / kept
    train_pos = int(data.labels[train_idx].sum())
    suggested = round((len(train_idx) - train_pos) / train_pos, 4)
    unbalanced = minority < IMBALANCE_FRACTION
    return {
        "dataset": schema.name,
        "target": schema.target,
        "positive_class": schema.positive_class,
        "negative_class": data.negative_class,
        "files": {"read": len(raw.files), "names": raw.files, "skipped": raw.skipped},
        "rows": {
            "read": data.rows_read,
            "dropped_missing_target": data.dropped["missing_target"],
            "dropped_duplicate": data.dropped["duplicate"],
            "out": kept,
        },
        "dropped": [
            {
                "reason": "no target value (null, empty or not a class name)",
                "rows": data.dropped["missing_target"],
            },
            {
                "reason": "duplicate of an earlier record (same id, features and target)",
                "rows": data.dropped["duplicate"],
            },
        ],
        "missing_values": missing,
        "invalid_values": {
            "counts": data.invalid_values,
            "fractions": {name: round(count / kept, 6) for name, count in data.invalid_values.items()},
            "examples": data.invalid_examples,
            "max_fraction": options.max_invalid_fraction,
            "warnings": invalid_value_warnings(data, schema, options),
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
            "counts": data.class_counts,
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
            "groups": None if data.groups is None else len(data.groups.used_levels()),
            **{
                name: {"rows": len(idx), "positives": int(data.labels[idx].sum())}
                for name, idx in zip(splitting.SPLIT_NAMES, parts, strict=True)
            },
        },
        "features": {
            "numeric": list(schema.numeric),
            "categorical": {c.name: list(c.levels) for c in pre.categorical},
            "levels_not_in_train": not_in_train,
            "encoded_columns": len(pre.feature_names),
            "standardize": options.standardize,
        },
    }


def run(argv: Sequence[str], where: contract.Paths) -> dict[str, Any]:
    options = parse_args(argv)
    schema = contract.dataset_schema()
    raw = records.RawReader(where.processing_input("raw"))
    data = clean(raw, schema)
    invalid_value_warnings(data, schema, options)  # fails before anything is written
    out = where.processing_output
    parts, pre = write_splits(data, schema, options, out)
    _write_raw_records(out("inference") / "test.jsonl", data, schema, parts[2])
    # The training split as raw records: the Baseline step profiles what the model learned from.
    _write_raw_records(out("baseline_records") / "train.jsonl", data, schema, parts[0])
    artifact = out("preprocessor") / PREPROCESSOR_FILE
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text(json.dumps(pre.to_dict(), indent=2) + "\n", encoding="utf-8")
    report = build_report(schema=schema, raw=raw, data=data, parts=parts, pre=pre, options=options)
    (out("report")).mkdir(parents=True, exist_ok=True)
    (out("report") / "data_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


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
