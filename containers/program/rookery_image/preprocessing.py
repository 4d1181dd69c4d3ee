"""Preprocess job: raw Firehose records in; XGBoost-ready splits, the fitted preprocessor and a report out.

``python3 /opt/program/preprocess.py [--split 0.7,0.15,0.15] [--seed 42] [--standardize false]``
reads ``processing/input/raw`` and writes ``processing/output/{train,validation,test,inference,
preprocessor,report}`` (see containers/README.md for the layouts).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import orjson

from rookery_image import contract, features, records, splitting
from rookery_image.contract import UserError
from rookery_image.schema import DatasetSchema, parse_schema

# Below this share of rows the minority class is "strongly unbalanced" and the report says so.
IMBALANCE_FRACTION = 0.2


@dataclass(frozen=True)
class Options:
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    seed: int = 42
    standardize: bool = False


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


def parse_args(argv: Sequence[str]) -> Options:
    parser = _Parser(prog="preprocess.py", add_help=False)
    parser.add_argument("--split", default="0.7,0.15,0.15")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--standardize", type=_bool, default=False)
    args = parser.parse_args(list(argv))
    try:
        fractions = splitting.parse_fractions(args.split)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return Options(fractions=fractions, seed=args.seed, standardize=args.standardize)


@dataclass
class Cleaned:
    """The kept rows, column-wise, with what happened on the way."""

    ids: list[Any] | None
    numeric: np.ndarray  # (n, len(schema.numeric)) float64, NaN = missing
    categories: list[list[str | None]]  # one list per categorical column
    labels: np.ndarray  # int8, 1 = positive class
    negative_class: str
    rows_read: int
    dropped: dict[str, int]
    invalid_values: dict[str, int]
    class_counts: dict[str, int]


def clean(rows: list[dict[str, Any]], schema: DatasetSchema) -> Cleaned:
    """Drop rows without a target and duplicates; check the target is binary; coerce feature values."""
    present: set[str] = set()
    for row in rows:
        present.update(row)
    absent = [c for c in (*schema.features, schema.target) if c not in present]
    if absent:
        raise UserError(
            f"columns {absent} of the dataset schema appear in no raw record "
            f"(records have {sorted(present)}); "
            "fix the schema's column names or the producer"
        )

    targets: list[str | None] = []
    for row in rows:
        try:
            targets.append(records.category(row.get(schema.target)))
        except ValueError:
            targets.append(None)
    keep = [i for i, t in enumerate(targets) if t is not None]
    dropped = {"missing_target": len(rows) - len(keep)}
    counts = Counter(targets[i] for i in keep)
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
    assert negative is not None

    invalid: dict[str, int] = {}
    numeric_cols = []
    for name in schema.numeric:
        column, bad = records.numbers([rows[i].get(name) for i in keep])
        numeric_cols.append(column)
        if bad:
            invalid[name] = len(bad)
    numeric = np.column_stack(numeric_cols) if numeric_cols else np.empty((len(keep), 0))
    categories = []
    for name in schema.categorical:
        texts: list[str | None] = []
        for i in keep:
            try:
                texts.append(records.category(rows[i].get(name)))
            except ValueError:
                texts.append(None)
                invalid[name] = invalid.get(name, 0) + 1
        categories.append(texts)
    ids = [rows[i].get(schema.id_column) for i in keep] if schema.id_column else None

    # Duplicates: the same record delivered twice (Firehose is at-least-once). First copy wins.
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for j in range(len(keep)):
        key = (
            None if ids is None else orjson.dumps(ids[j]),
            *(None if math.isnan(v) else v for v in numeric[j]),
            *(col[j] for col in categories),
            targets[keep[j]],
        )
        if key not in seen:
            seen.add(key)
            unique.append(j)
    dropped["duplicate"] = len(keep) - len(unique)
    labels = np.array([targets[keep[j]] == schema.positive_class for j in unique], dtype=np.int8)
    return Cleaned(
        ids=None if ids is None else [ids[j] for j in unique],
        numeric=numeric[unique],
        categories=[[col[j] for j in unique] for col in categories],
        labels=labels,
        negative_class=negative,
        rows_read=len(rows),
        dropped=dropped,
        invalid_values=invalid,
        class_counts={schema.positive_class: int(labels.sum()), negative: int(len(labels) - labels.sum())},
    )


def split_rows(data: Cleaned, options: Options) -> list[np.ndarray]:
    parts = splitting.stratified_split(data.labels, options.fractions, options.seed)
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


def _select(data: Cleaned, idx: np.ndarray) -> tuple[np.ndarray, list[list[str | None]]]:
    return data.numeric[idx], [[col[i] for i in idx] for col in data.categories]


def _write_csv(path: Path, labels: np.ndarray, matrix: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([labels.astype(np.float64), matrix.astype(np.float64)])
    # %.9g round-trips float32 exactly: training reads back the very numbers serving computes.
    np.savetxt(path, table, fmt="%.9g", delimiter=",")


def _raw_records(data: Cleaned, schema: DatasetSchema, idx: np.ndarray) -> bytes:
    """The test split as raw records (normalized values, target left out) for batch transform."""
    lines = []
    for i in idx:
        record: dict[str, Any] = {}
        if data.ids is not None and schema.id_column:
            record[schema.id_column] = data.ids[i]
        for k, name in enumerate(schema.numeric):
            value = data.numeric[i, k]
            record[name] = None if math.isnan(value) else float(value)
        for k, name in enumerate(schema.categorical):
            record[name] = data.categories[k][i]
        lines.append(orjson.dumps(record))
    return b"\n".join(lines) + b"\n"


def build_report(
    *,
    schema: DatasetSchema,
    raw: records.RawData,
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
        count = sum(v is None for v in data.categories[k])
        missing[name] = {"count": count, "fraction": round(count / kept, 6)}
    train_idx = parts[0]
    train_levels = [{col[i] for i in train_idx} for col in data.categories]
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
            "treatment": "non-numbers in numeric columns and lists/objects count as missing",
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
                f"the minority class is {minority:.1%} of rows: set the hyperparameter "
                f"scale_pos_weight={suggested} "
                "(negatives / positives in the training split) and judge the model by AUC, PR AUC and the "
                "operating point, not accuracy"
                if unbalanced
                else "classes are balanced enough; scale_pos_weight is not needed"
            ),
        },
        "split": {
            "fractions": list(options.fractions),
            "seed": options.seed,
            "stratified": True,
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
    schema = parse_schema(contract.dataset_schema_json())
    raw = records.read_raw(where.processing_input("raw"))
    data = clean(raw.records, schema)
    parts = split_rows(data, options)
    train_numeric, _ = _select(data, parts[0])
    try:
        pre = features.fit(
            dataset=schema.name,
            target=schema.target,
            positive_class=schema.positive_class,
            negative_class=data.negative_class,
            id_column=schema.id_column,
            numeric_names=schema.numeric,
            numeric_train=train_numeric,
            categorical_names=schema.categorical,
            categorical_levels=[[v for v in col if v is not None] for col in data.categories],
            standardize=options.standardize,
        )
    except ValueError as exc:
        raise UserError(
            f"{exc}; every numeric feature needs values to impute from: drop the column or add data"
        ) from None

    out = where.processing_output
    for name, idx in zip(splitting.SPLIT_NAMES, parts, strict=True):
        numeric, categories = _select(data, idx)
        matrix = pre.encode(numeric, categories)
        _write_csv(out(name) / f"{name}.csv", data.labels[idx], matrix)
    inference = out("inference") / "test.jsonl"
    inference.parent.mkdir(parents=True, exist_ok=True)
    inference.write_bytes(_raw_records(data, schema, parts[2]))
    artifact = out("preprocessor") / "preprocessor.json"
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
        if balance["strongly_unbalanced"]:
            print(f"preprocess: WARNING strongly unbalanced target: {balance['advice']}", flush=True)

    return contract.run_job("preprocess", job)
