"""Baseline job: the training split's statistics and constraints, and the model-quality baseline.

``python3 /opt/program/baseline.py --thresholds '{"drift": {...}, "quality": {...}}'`` reads the
training split as raw records (``processing/input/baseline_records``) and ``evaluation.json``
(``processing/input/evaluation``) and writes, under ``processing/output/baseline``:

- ``data-quality/statistics.json``: per feature of the schema, Model Monitor's statistics, with the
  training split's deciles as each numeric feature's buckets (the bins the monitor's PSI uses);
- ``data-quality/constraints.json``: per feature the inferred type, the completeness required
  (the baseline's less the tolerated increase of missing values), the known categories, and the
  distance and threshold the monitor judges drift by;
- ``model-quality/statistics.json``: ``evaluation.json`` itself (the test split at the chosen
  threshold); ``model-quality/constraints.json``: each metric's lowest acceptable value.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rookery_contracts import monitoring as mon
from rookery_contracts.evaluation import (
    EVALUATION_FILE,
    METRICS_KEY,
    THRESHOLD_PATH,
    EvaluationError,
    value_at,
)
from rookery_contracts.schema import DatasetSchema
from rookery_image import contract, profiles, records
from rookery_image.contract import UserError

RECORDS_INPUT = "baseline_records"
EVALUATION_INPUT = "evaluation"
BASELINE_OUTPUT = "baseline"
# Records profiled at a time.
BLOCK_ROWS = 8192


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"baseline.py arguments: {message}; usage: {self.format_usage().strip()}")


def parse_thresholds(text: str) -> tuple[dict[str, float], dict[str, float]]:
    """``--thresholds`` JSON into (drift, quality) mappings with every expected key, as numbers."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--thresholds is not JSON ({exc}); pass the stage's monitoring thresholds") from None
    parts = []
    for section, keys in (("drift", mon.DRIFT_THRESHOLDS), ("quality", mon.QUALITY_THRESHOLDS)):
        given = raw.get(section) if isinstance(raw, Mapping) else None
        if not isinstance(given, Mapping):
            raise UserError(f"--thresholds needs an object {section!r} with {list(keys)}")
        missing = [k for k in keys if k not in given]
        unknown = sorted(set(given) - set(keys))
        if missing or unknown:
            raise UserError(
                f"--thresholds {section}: missing {missing}, unknown {unknown}; expected exactly {list(keys)}"
            )
        bad = [k for k in keys if isinstance(given[k], bool) or not isinstance(given[k], int | float)]
        if bad:
            raise UserError(f"--thresholds {section}: {bad} must be numbers")
        parts.append({k: float(given[k]) for k in keys})
    return parts[0], parts[1]


def _blocks(rows: Iterable[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    block: list[dict[str, Any]] = []
    for row in rows:
        block.append(row)
        if len(block) == BLOCK_ROWS:
            yield block
            block = []
    if block:
        yield block


def decile_edges(values: np.ndarray) -> np.ndarray:
    """The distinct decile boundaries of ``values`` (min .. max); fewer when values repeat."""
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, profiles.BINS + 1)))


def profile_training(
    rows: Iterable[dict[str, Any]], schema: DatasetSchema
) -> tuple[int, list[profiles.NumericProfile], list[profiles.CategoricalProfile], list[np.ndarray]]:
    """Profile the training split; also return each numeric feature's bounds as (lower, upper) edges."""
    numeric = [profiles.NumericProfile(name) for name in schema.numeric]
    categorical = [profiles.CategoricalProfile(name) for name in schema.categorical]
    kept: list[list[np.ndarray]] = [[] for _ in numeric]
    count = 0
    for block in _blocks(rows):
        count += len(block)
        for k, prof in enumerate(numeric):
            kept[k].append(prof.add(profiles.column(block, prof.name)))
        for cat in categorical:
            cat.add(profiles.column(block, cat.name))
    edges = []
    for k, prof in enumerate(numeric):
        values = np.concatenate(kept[k]) if kept[k] else np.empty(0)
        if not len(values):
            raise UserError(
                f"numeric feature {prof.name!r} has no value in the training split; the baseline needs "
                "values to bin: drop the column from the schema or ingest data that has it"
            )
        bounds = decile_edges(values)
        if len(bounds) == 1:  # a constant feature: one bin holding everything
            bounds = np.array([bounds[0], bounds[0]])
        prof.edges = bounds[1:-1]
        prof.bins = np.bincount(np.searchsorted(prof.edges, values, side="right"), minlength=len(bounds) - 1)
        edges.append(bounds)
    return count, numeric, categorical, edges


def _bounds(edges: np.ndarray) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges.tolist())]


def data_quality(
    rows: Iterable[dict[str, Any]], schema: DatasetSchema, drift: Mapping[str, float]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json) of the training split's records."""
    count, numeric, categorical, edges = profile_training(rows, schema)
    if not count:
        raise UserError("the training split holds no records; the Baseline step needs the preprocess output")
    stats = [prof.statistics(_bounds(e)) for prof, e in zip(numeric, edges, strict=True)]
    stats += [cat.statistics() for cat in categorical]
    constraints: list[dict[str, Any]] = []
    for prof in numeric:
        constraints.append(
            {
                "name": prof.name,
                "inferred_type": "Integral" if prof.integral else "Fractional",
                "completeness": _required(prof.counts, drift),
                "num_constraints": {"is_non_negative": prof.low >= 0},
                "monitoringConfigOverrides": {
                    "comparison_method": mon.PSI,
                    "comparison_threshold": drift["numeric_psi"],
                },
            }
        )
    for cat in categorical:
        constraints.append(
            {
                "name": cat.name,
                "inferred_type": "String",
                "completeness": _required(cat.counts, drift),
                "string_constraints": {"domains": sorted(cat.categories)},
                "monitoringConfigOverrides": {
                    "comparison_method": mon.LINF,
                    "comparison_threshold": drift["categorical_linf"],
                },
            }
        )
    document = {
        "version": 0,
        "features": constraints,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": drift["invalid_share"],
            "domain_content_threshold": drift["unknown_category_share"],
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": drift["numeric_psi"],
                "comparison_method": mon.PSI,
            },
        },
    }
    return profiles.statistics_document(count, stats), document


def _required(counts: profiles.Counts, drift: Mapping[str, float]) -> float:
    """The completeness a window must keep: the baseline's, less the tolerated increase of missing values."""
    completeness = counts.present / counts.observed if counts.observed else 0.0
    return round(max(0.0, completeness - drift["missing_rate_increase"]), 6)


def model_quality(evaluation: Mapping[str, Any], quality: Mapping[str, float]) -> dict[str, Any]:
    """The model-quality ``constraints.json``: each metric may fall ``max_drop`` below the test split's."""
    constraints = {}
    for name in mon.QUALITY_METRICS:
        try:
            value = float(value_at(evaluation, f"{METRICS_KEY}.{name}.value"))
        except EvaluationError as exc:
            raise UserError(str(exc)) from None
        constraints[name] = {
            "threshold": round(max(0.0, value - quality["max_drop"]), 6),
            "comparison_operator": mon.LESS_THAN_THRESHOLD,
        }
    try:
        threshold = float(value_at(evaluation, THRESHOLD_PATH))
    except (EvaluationError, TypeError, ValueError) as exc:
        raise UserError(f"evaluation.json: {exc}") from None
    return {
        "version": 0,
        "binary_classification_constraints": constraints,
        "monitoring_config": {
            # The deployed threshold: a model-quality job definition's baseline is this file alone.
            "decision_threshold": threshold,
            "max_drop": quality["max_drop"],
            "min_labelled_records": int(quality["min_labelled_records"]),
        },
    }


def _write(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def run(argv: Sequence[str], where: contract.Paths) -> dict[str, Any]:
    parser = _Parser(prog="baseline.py", add_help=False)
    parser.add_argument("--thresholds", required=True)
    drift, quality = parse_thresholds(parser.parse_args(list(argv)).thresholds)
    schema = contract.dataset_schema()
    statistics, constraints = data_quality(
        records.RawReader(where.processing_input(RECORDS_INPUT)), schema, drift
    )
    evaluation_path = where.processing_input(EVALUATION_INPUT) / EVALUATION_FILE
    if not evaluation_path.is_file():
        raise UserError(
            f"missing {evaluation_path}: map the Evaluate step's output to the input 'evaluation'"
        )
    evaluation = json.loads(evaluation_path.read_text(encoding="utf-8"))
    out = where.processing_output(BASELINE_OUTPUT)
    _write(out / mon.baseline_file(mon.DATA_QUALITY, mon.STATISTICS_FILE), statistics)
    _write(out / mon.baseline_file(mon.DATA_QUALITY, mon.CONSTRAINTS_FILE), constraints)
    quality_stats = out / mon.baseline_file(mon.MODEL_QUALITY, mon.STATISTICS_FILE)
    quality_stats.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(evaluation_path, quality_stats)
    _write(
        out / mon.baseline_file(mon.MODEL_QUALITY, mon.CONSTRAINTS_FILE), model_quality(evaluation, quality)
    )
    return statistics


def main(argv: Sequence[str]) -> int:
    def job() -> None:
        statistics = run(argv, contract.paths())
        print(
            f"baseline: {statistics['dataset']['item_count']} training records, "
            f"{len(statistics['features'])} features profiled",
            flush=True,
        )

    return contract.run_job("baseline", job)
