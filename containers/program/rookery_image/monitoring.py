"""Monitoring job: the project image as a custom Model Monitor container.

``python3 /opt/program/monitor.py data-quality|model-quality`` reads the environment SageMaker
sets for a monitoring schedule's job (:mod:`rookery_contracts.monitoring`): the window's capture
files under ``dataset_source``, the baseline under ``baseline_statistics``/``baseline_constraints``,
``output_path`` for the reports. The dataset schema arrives as for every job of the image
(``ROOKERY_DATASET_SCHEMA``).

- **data quality**: per feature of the schema, missing values, values of the wrong type, fields
  absent from records, categories the training split never had, and the distance of the window's
  distribution to the baseline's (:mod:`rookery_image.drift`);
- **model quality**: captured predictions joined to ground truth by inference id (records SageMaker
  merged already carry ``groundTruthData``; otherwise the files under ``ground_truth_source``),
  the same metrics as Evaluate at the deployed threshold, each against its baseline constraint.

Both write ``constraint_violations.json`` (Model Monitor's layout), the window's ``statistics.json``
and rookery's ``monitoring_report.json`` (status, per-feature table, unreadable capture files), and
their CloudWatch metrics when ``publish_cloudwatch_metrics`` is ``Enabled``. A window without
traffic is reported as ``no traffic``, never as "no violations". Reading streams the window: the
memory used does not grow with the number of captured records (model quality keeps one label and
one score per labelled record).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rookery_contracts import monitoring as mon
from rookery_contracts.evaluation import THRESHOLD_PATH, EvaluationError, value_at
from rookery_contracts.schema import DatasetSchema
from rookery_image import captured, contract, drift, metrics, profiles
from rookery_image.contract import UserError

BLOCK_ROWS = 8192


@dataclass(frozen=True)
class JobEnvironment:
    """The monitoring job's settings, read once from the environment (defaults: SageMaker's paths)."""

    dataset_source: Path
    output_path: Path
    baseline_statistics: Path
    baseline_constraints: Path
    ground_truth_source: Path | None
    metrics_dir: Path
    publish_metrics: bool
    endpoint: str | None
    schedule: str | None
    start_time: str | None
    end_time: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str], where: contract.Paths) -> JobEnvironment:
        def path(name: str, default: str) -> Path:
            return Path(env.get(name) or where.located(default))

        truth = env.get(mon.GROUND_TRUTH_SOURCE_ENV)
        return cls(
            dataset_source=path(mon.DATASET_SOURCE_ENV, mon.ENDPOINT_INPUT_PATH),
            output_path=path(mon.OUTPUT_PATH_ENV, mon.RESULT_PATH),
            baseline_statistics=path(mon.BASELINE_STATISTICS_ENV, mon.BASELINE_STATISTICS_PATH),
            baseline_constraints=path(mon.BASELINE_CONSTRAINTS_ENV, mon.BASELINE_CONSTRAINTS_PATH),
            ground_truth_source=Path(truth) if truth else None,
            metrics_dir=where.located(mon.CLOUDWATCH_METRICS_PATH),
            publish_metrics=env.get(mon.PUBLISH_METRICS_ENV, "") == mon.METRICS_ENABLED,
            endpoint=env.get(mon.ENDPOINT_NAME_ENV) or None,
            schedule=env.get(mon.SCHEDULE_NAME_ENV) or None,
            start_time=env.get(mon.START_TIME_ENV) or None,
            end_time=env.get(mon.END_TIME_ENV) or None,
        )


def _load(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(
            f"the baseline {what} {path} is missing; attach the registered model's baseline to the "
            "schedule (its DriftCheckBaselines) or run the pipeline's Baseline step"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"the baseline {what} {path} is not JSON ({exc}); rerun the Baseline step") from None
    if not isinstance(document, dict):
        raise UserError(f"the baseline {what} {path} is not a JSON object; rerun the Baseline step")
    return document


# --- data quality -------------------------------------------------------------------------------


@dataclass
class Window:
    """What a pass over the window's capture files found, besides the profiles."""

    invocations: int = 0
    records: int = 0
    files: list[str] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)


def _record_blocks(
    invocations: Iterable[captured.Invocation], window: Window
) -> Iterator[list[dict[str, Any]]]:
    block: list[dict[str, Any]] = []
    for invocation in invocations:
        window.invocations += 1
        block.extend(invocation.records)
        if len(block) >= BLOCK_ROWS:
            window.records += len(block)
            yield block
            block = []
    if block:
        window.records += len(block)
        yield block


def _baseline_features(
    statistics: Mapping[str, Any], constraints: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    stats = {f["name"]: f for f in statistics.get("features", []) if isinstance(f, dict) and "name" in f}
    cons = {f["name"]: f for f in constraints.get("features", []) if isinstance(f, dict) and "name" in f}
    return stats, cons


def data_quality(
    reader: captured.CaptureReader,
    schema: DatasetSchema,
    statistics: Mapping[str, Any],
    constraints: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[drift.FeatureVerdict]]:
    """(window statistics.json, report, verdicts) of one pass over the capture files."""
    stats, cons = _baseline_features(statistics, constraints)
    absent = [name for name in schema.features if name not in stats or name not in cons]
    if absent:
        raise UserError(
            f"the baseline has no statistics or constraints for feature(s) {absent} of the dataset schema; "
            "the schema changed since the model was registered: rerun the pipeline"
        )
    config = constraints.get("monitoring_config") or {}
    numeric: list[profiles.NumericProfile] = []
    for name in schema.numeric:
        buckets = (
            stats[name]["numerical_statistics"].get("distribution", {}).get("kll", {}).get("buckets", [])
        )
        edges = np.array([float(b["upper_bound"]) for b in buckets[:-1]], dtype=np.float64)
        numeric.append(profiles.NumericProfile(name, edges=edges))
    categorical = [profiles.CategoricalProfile(name) for name in schema.categorical]
    window = Window()
    for block in _record_blocks(reader, window):
        for prof in numeric:
            prof.add(profiles.column(block, prof.name))
        for cat in categorical:
            cat.add(profiles.column(block, cat.name))
    window.files = reader.files
    window.issues = [issue.to_dict() for issue in reader.issues]
    verdicts: list[drift.FeatureVerdict] = []
    current = []
    for prof in numeric:
        base = stats[prof.name]
        buckets = base["numerical_statistics"].get("distribution", {}).get("kll", {}).get("buckets", [])
        bounds = [(float(b["lower_bound"]), float(b["upper_bound"])) for b in buckets]
        current.append(prof.statistics(bounds))
        if window.records:
            verdicts.append(drift.judge_numeric(prof, base, cons[prof.name], config))
    for cat in categorical:
        current.append(cat.statistics())
        if window.records:
            verdicts.append(drift.judge_categorical(cat, stats[cat.name], cons[cat.name], config))
    report = _report(
        mon.DATA_QUALITY, window, [v.to_dict() for v in verdicts], sum(len(v.violations) for v in verdicts)
    )
    return profiles.statistics_document(window.records, current), report, verdicts


def _report(kind: str, window: Window, rows: list[dict[str, Any]], violations: int) -> dict[str, Any]:
    status = mon.VIOLATIONS_FOUND if violations else mon.NO_DRIFT
    if not window.records:
        status = mon.NO_TRAFFIC
    return {
        "kind": kind,
        "status": status,
        "invocations": window.invocations,
        "records": window.records,
        "violations": violations,
        "files": {"read": len(window.files), "names": window.files, "issues": window.issues},
        "features" if kind == mon.DATA_QUALITY else "metrics": rows,
    }


# --- model quality ------------------------------------------------------------------------------


def ground_truth(folder: Path | None, issues: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Ground-truth labels by the id they name (``eventMetadata.eventId``), one label per record."""
    found: dict[str, list[str]] = {}
    if folder is None or not folder.is_dir():
        return found
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        shown = path.relative_to(folder).as_posix()
        bad = 0
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                    key = event["eventMetadata"]["eventId"]
                    found[str(key)] = labels_of(event["groundTruthData"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    bad += 1
        if bad:
            issues.append(
                {
                    "file": shown,
                    "problem": "ground-truth lines without groundTruthData.data and eventMetadata.eventId",
                    "lines": bad,
                    "example_lines": [],
                }
            )
    return found


def labels_of(truth: Mapping[str, Any]) -> list[str]:
    """The labels of one ground-truth entry (one line of CSV data per record of the invocation)."""
    data = captured.payload_bytes(truth).decode("utf-8")
    return [line.strip().strip('"') for line in data.splitlines() if line.strip()]


def predictions_of(output: Mapping[str, Any] | None) -> list[float]:
    """The probabilities an endpoint answered with (JSON, JSON lines or CSV ``probability,label``)."""
    if output is None:
        raise ValueError("the capture record has no endpointOutput")
    body = captured.payload_bytes(output)
    kind = captured.media_type(output.get("observedContentType"))
    if kind in captured.CSV_TYPES:
        return [float(line.split(",", 1)[0]) for line in body.decode("utf-8").splitlines() if line.strip()]
    if kind in captured.JSON_TYPES:
        document = orjson.loads(body)
        rows = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(rows, list):
            raise ValueError("a JSON answer without 'predictions'")
    else:
        rows = [orjson.loads(line) for line in body.splitlines() if line.strip()]
    return [float(r["probability"]) for r in rows]


def model_quality(
    reader: captured.CaptureReader,
    schema: DatasetSchema,
    statistics: Mapping[str, Any],
    constraints: Mapping[str, Any],
    truth_folder: Path | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(window metrics in evaluation.json's layout, report) of captured predictions with ground truth."""
    limits = constraints.get("binary_classification_constraints") or {}
    config = constraints.get("monitoring_config") or {}
    try:
        threshold = float(config.get("decision_threshold", value_at(statistics, THRESHOLD_PATH)))
    except (EvaluationError, TypeError, ValueError) as exc:
        raise UserError(f"the model-quality baseline has no decision threshold: {exc}") from None
    window = Window()
    truth = ground_truth(truth_folder, window.issues)
    labels: list[int] = []
    scores: list[float] = []
    unusable = 0
    for invocation in reader:
        window.invocations += 1
        window.records += len(invocation.records)
        key = invocation.join_id
        try:
            given = labels_of(invocation.ground_truth) if invocation.ground_truth else truth.get(key or "")
            if given is None:
                continue
            probabilities = predictions_of(invocation.output)
        except (ValueError, KeyError, TypeError):
            unusable += 1
            continue
        if len(given) != len(probabilities):
            unusable += 1
            continue
        labels.extend(int(label == schema.positive_class) for label in given)
        scores.extend(probabilities)
    window.files = reader.files
    window.issues = [issue.to_dict() for issue in reader.issues] + window.issues
    if unusable:
        window.issues.append(
            {
                "file": "(ground-truth join)",
                "problem": "invocations whose answer or ground truth could not be read, or whose label count "
                "differs from the records answered",
                "lines": unusable,
                "example_lines": [],
            }
        )
    y, s = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    rows: list[dict[str, Any]] = []
    values: dict[str, float] = {}
    minimum = int(config.get("min_labelled_records", 1))
    judged = len(y) >= minimum and len(np.unique(y)) == 2
    if len(y):
        values = metrics.Confusion.at(y, s, threshold).rates()
        values["auc"] = metrics.roc_auc(y, s) if len(np.unique(y)) == 2 else math.nan
    violations = 0
    for name in mon.QUALITY_METRICS:
        limit = limits.get(name) or {}
        bar = limit.get("threshold")
        value = values.get(name)
        failed = (
            judged and bar is not None and value is not None and math.isfinite(value) and value < float(bar)
        )
        violations += int(failed)
        rows.append(
            {
                "metric": name,
                "baseline": _baseline_value(statistics, name),
                "current": None if value is None or not math.isfinite(value) else round(value, 6),
                "threshold": bar,
                "verdict": mon.LESS_THAN_THRESHOLD if failed else ("ok" if judged else "not judged"),
            }
        )
    report = _report(mon.MODEL_QUALITY, window, rows, violations)
    report["labelled_records"] = len(y)
    report["decision_threshold"] = threshold
    if window.records and not judged:
        report["status"] = mon.NO_GROUND_TRUTH
        report["reason"] = (
            f"{len(y)} captured record(s) have ground truth (both classes needed, at least {minimum}); "
            "upload labels under the ground-truth prefix"
        )
    document = {
        "version": 0,
        "dataset": {"item_count": len(y)},
        "binary_classification_metrics": {
            k: {"value": v, "standard_deviation": "NaN"} for k, v in values.items() if math.isfinite(v)
        },
    }
    return document, report


def _baseline_value(statistics: Mapping[str, Any], name: str) -> float | None:
    value = value_at(statistics, f"binary_classification_metrics.{name}.value", None)
    return None if value is None else round(float(value), 6)


def quality_violations(report: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "metric_name": row["metric"],
            "constraint_check_type": mon.LESS_THAN_THRESHOLD,
            "description": f"Metric {row['metric']} with {row['current']} was {mon.LESS_THAN_THRESHOLD} "
            f"{row['threshold']}",
        }
        for row in report["metrics"]
        if row["verdict"] == mon.LESS_THAN_THRESHOLD
    ]


# --- outputs ------------------------------------------------------------------------------------


def cloudwatch_metrics(kind: str, report: Mapping[str, Any], env: JobEnvironment) -> list[dict[str, Any]]:
    """The job's metrics in the BYOC file layout (one PutMetricData datum per line)."""
    stamp = env.end_time or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    dimensions = [{"Name": mon.ENDPOINT_DIMENSION, "Value": env.endpoint or "local"}]
    if env.schedule:
        dimensions.append({"Name": mon.SCHEDULE_DIMENSION, "Value": env.schedule})

    def datum(name: str, value: float, unit: str = "None") -> dict[str, Any]:
        return {
            "MetricName": name,
            "Timestamp": stamp,
            "Dimensions": dimensions,
            "Value": value,
            "Unit": unit,
        }

    found = [datum(mon.RECORDS_METRIC, float(report["records"]), "Count")]
    if report["status"] in (mon.NO_TRAFFIC, mon.NO_GROUND_TRUTH):
        return found  # no verdict: the alarms see missing data, not a clean window
    found.append(datum(mon.VIOLATIONS_METRIC, float(report["violations"]), "Count"))
    if kind == mon.DATA_QUALITY:
        for row in report["features"]:
            if row["distance"] is not None:
                found.append(datum(f"{mon.DRIFT_METRIC_PREFIX}{row['feature']}", row["distance"]))
    else:
        for row in report["metrics"]:
            if row["current"] is not None:
                found.append(datum(row["metric"], row["current"]))
    return found


def write_outputs(
    kind: str, statistics: Mapping[str, Any], report: dict[str, Any], env: JobEnvironment
) -> None:
    if kind == mon.DATA_QUALITY:
        violations = [v for row in report["features"] for v in row["violations"]]
    else:
        violations = quality_violations(report)
    report["window"] = {"start": env.start_time, "end": env.end_time}
    report["endpoint"] = env.endpoint
    out = env.output_path
    out.mkdir(parents=True, exist_ok=True)
    for name, document in (
        (mon.STATISTICS_FILE, statistics),
        (mon.VIOLATIONS_FILE, {"violations": violations}),
        (mon.REPORT_FILE, report),
    ):
        (out / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if env.publish_metrics:
        env.metrics_dir.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(d) for d in cloudwatch_metrics(kind, report, env)]
        (env.metrics_dir / mon.METRICS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(
    argv: Sequence[str], where: contract.Paths, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    if len(argv) != 1 or argv[0] not in mon.MONITOR_KINDS:
        raise UserError(
            f"monitor.py takes one argument, the kind of monitoring: {' or '.join(mon.MONITOR_KINDS)}"
        )
    kind = argv[0]
    env = JobEnvironment.from_env(os.environ if environ is None else environ, where)
    schema = contract.dataset_schema()
    constraints = _load(env.baseline_constraints, "constraints")
    # A model-quality job definition passes constraints only (they carry the decision threshold).
    optional = kind == mon.MODEL_QUALITY and not env.baseline_statistics.is_file()
    statistics = {} if optional else _load(env.baseline_statistics, "statistics")
    reader = captured.CaptureReader(env.dataset_source, columns=schema.features, endpoint=env.endpoint)
    if kind == mon.DATA_QUALITY:
        window_stats, report, _ = data_quality(reader, schema, statistics, constraints)
    else:
        window_stats, report = model_quality(reader, schema, statistics, constraints, env.ground_truth_source)
    write_outputs(kind, window_stats, report, env)
    return report


def main(argv: Sequence[str]) -> int:
    def job() -> None:
        report = run(argv, contract.paths())
        print(
            f"monitor {report['kind']}: {report['status']} ({report['records']} records, "
            f"{report['violations']} violation(s), {len(report['files']['issues'])} capture file issue(s))",
            flush=True,
        )

    return contract.run_job("monitor", job)
