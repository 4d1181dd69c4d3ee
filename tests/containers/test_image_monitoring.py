"""The baseline and the monitor: drift caught on the right feature only, clean traffic left alone,
bad capture files reported, an empty window called "no traffic", model quality against ground truth,
and both entrypoints on the Model Monitor container contract."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from image_helpers import Sandbox, check
from monitoring_helpers import (
    DRIFT,
    ENDPOINT,
    QUALITY,
    SCHEMA,
    SCHEMA_FIELDS,
    Row,
    capture_folder,
    captured_line,
    rows,
    write_capture,
    write_ground_truth,
    write_predictions,
)

from rookery_contracts import monitoring as mon
from rookery_image import baselining, captured, drift, monitoring

TRAINING_ROWS = 2000
# evaluation.json as far as the model-quality baseline reads it.
MQ_STATISTICS = {
    "binary_classification_metrics": {m: {"value": 0.9} for m in mon.QUALITY_METRICS},
    "decision_threshold": {"value": 0.5},
}
WINDOW_ROWS = 1000


@pytest.fixture(scope="module")
def baseline() -> tuple[dict[str, Any], dict[str, Any]]:
    return baselining.data_quality(rows(TRAINING_ROWS, seed=1), SCHEMA, DRIFT)


def monitor(folder: Path, baseline: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    reader = captured.CaptureReader(folder, columns=SCHEMA.features, endpoint=ENDPOINT)
    _, report, _ = monitoring.data_quality(reader, SCHEMA, *baseline)
    return report


def flagged(report: dict[str, Any]) -> dict[str, set[str]]:
    """Feature -> the checks it failed (features without violations left out)."""
    return {
        row["feature"]: {v["constraint_check_type"] for v in row["violations"]}
        for row in report["features"]
        if row["violations"]
    }


# --- the baseline ------------------------------------------------------------------------------


def test_baseline_statistics_and_constraints_follow_model_monitors_layout(baseline: Any) -> None:
    statistics, constraints = baseline
    assert statistics["dataset"]["item_count"] == TRAINING_ROWS
    by_name = {f["name"]: f for f in statistics["features"]}
    assert list(by_name) == list(SCHEMA.features)
    spend = by_name["spend"]["numerical_statistics"]
    assert spend["common"]["num_missing"] > 0 and spend["mean"] == pytest.approx(100, abs=2)
    buckets = spend["distribution"]["kll"]["buckets"]
    assert len(buckets) == 10 and sum(b["count"] for b in buckets) == spend["common"]["num_present"]
    assert all(b["lower_bound"] <= b["upper_bound"] for b in buckets)
    plan = by_name["plan"]["string_statistics"]
    assert {b["value"] for b in plan["distribution"]["categorical"]["buckets"]} == {"basic", "plus", "pro"}
    cons = {f["name"]: f for f in constraints["features"]}
    assert cons["spend"]["inferred_type"] == "Fractional" and cons["visits"]["inferred_type"] == "Integral"
    assert cons["region"]["string_constraints"]["domains"] == ["east", "north", "south", "west"]
    # Required completeness: the baseline's (about 95% for spend) less the tolerated 5 points.
    assert cons["spend"]["completeness"] == pytest.approx(0.90, abs=0.02)
    assert cons["spend"]["monitoringConfigOverrides"] == {
        "comparison_method": "psi",
        "comparison_threshold": 0.2,
    }
    assert cons["plan"]["monitoringConfigOverrides"] == {
        "comparison_method": "linf",
        "comparison_threshold": 0.1,
    }
    assert constraints["monitoring_config"]["datatype_check_threshold"] == 0.01


def test_model_quality_constraints_allow_the_stages_drop() -> None:
    document = baselining.model_quality(MQ_STATISTICS, QUALITY)
    limits = document["binary_classification_constraints"]
    assert set(limits) == set(mon.QUALITY_METRICS)
    assert limits["auc"] == {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}
    assert document["monitoring_config"]["decision_threshold"] == 0.5


def test_thresholds_argument_names_every_missing_or_unknown_key() -> None:
    with pytest.raises(Exception, match=r"missing \['invalid_share'\], unknown \['typo'\]"):
        baselining.parse_thresholds(
            json.dumps(
                {"drift": {**{k: 1 for k in DRIFT if k != "invalid_share"}, "typo": 1}, "quality": QUALITY}
            )
        )


# --- data quality ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15, 16])
def test_same_distribution_raises_no_violation(seed: int, tmp_path: Path, baseline: Any) -> None:
    write_capture(tmp_path, rows(WINDOW_ROWS, seed=seed))
    report = monitor(tmp_path, baseline)
    assert report["status"] == mon.NO_DRIFT, flagged(report)
    assert report["records"] == WINDOW_ROWS and report["invocations"] == WINDOW_ROWS // 10
    assert all(row["verdict"] == "ok" for row in report["features"])


def test_a_small_clean_window_is_not_called_drift(tmp_path: Path, baseline: Any) -> None:
    """50 records: the noise floor, not the stage's threshold, decides."""
    write_capture(tmp_path, rows(50, seed=3))
    report = monitor(tmp_path, baseline)
    assert report["status"] == mon.NO_DRIFT, flagged(report)
    spend = next(r for r in report["features"] if r["feature"] == "spend")
    assert spend["threshold"] > spend["stage_threshold"]


def _shift_spend(row: Row, rng: np.random.Generator) -> None:
    if row["spend"] is not None:
        row["spend"] += 20  # one standard deviation


def _new_plan(row: Row, rng: np.random.Generator) -> None:
    if rng.random() < 0.2:
        row["plan"] = "enterprise"


def _visits_missing(row: Row, rng: np.random.Generator) -> None:
    if rng.random() < 0.3:
        row["visits"] = None


def _no_region(row: Row, rng: np.random.Generator) -> None:
    if rng.random() < 0.3:
        del row["region"]


def _text_spend(row: Row, rng: np.random.Generator) -> None:
    if rng.random() < 0.1:
        row["spend"] = "n/a"


@pytest.mark.parametrize(
    ("change", "feature", "checks"),
    [
        (_shift_spend, "spend", {mon.BASELINE_DRIFT_CHECK}),
        (_new_plan, "plan", {mon.CATEGORICAL_VALUES_CHECK, mon.BASELINE_DRIFT_CHECK}),
        (_visits_missing, "visits", {mon.COMPLETENESS_CHECK}),
        (_no_region, "region", {mon.MISSING_COLUMN_CHECK}),
        (_text_spend, "spend", {mon.DATA_TYPE_CHECK, mon.COMPLETENESS_CHECK}),
    ],
    ids=["shifted-numeric", "new-category", "missing-values", "missing-field", "wrong-type"],
)
def test_each_change_is_caught_on_its_feature_only(
    change: Any, feature: str, checks: set[str], tmp_path: Path, baseline: Any
) -> None:
    write_capture(tmp_path, rows(WINDOW_ROWS, seed=21, change=change))
    report = monitor(tmp_path, baseline)
    assert report["status"] == mon.VIOLATIONS_FOUND
    assert flagged(report) == {feature: checks}


def test_csv_requests_are_read_by_the_schemas_column_order(tmp_path: Path, baseline: Any) -> None:
    folder = capture_folder(tmp_path)
    lines = []
    for row in rows(WINDOW_ROWS, seed=31, change=_shift_spend):
        values = ["" if row[c] is None else str(row[c]) for c in SCHEMA.features]
        lines.append(captured_line(",".join(values).encode(), "text/csv"))
    (folder / "csv.jsonl").write_text("".join(lines))
    report = monitor(tmp_path, baseline)
    assert report["records"] == WINDOW_ROWS
    assert flagged(report) == {"spend": {mon.BASELINE_DRIFT_CHECK}}


def test_bad_capture_files_are_report_entries_not_crashes(tmp_path: Path, baseline: Any) -> None:
    good = write_capture(tmp_path, rows(WINDOW_ROWS, seed=41))
    folder = good.parent
    (folder / "empty.jsonl").write_text("")
    line = captured_line(b'{"spend": 1, "visits": 1, "plan": "basic", "region": "east"}', "application/json")
    (folder / "truncated.jsonl").write_text(line + line[: len(line) // 2])
    (folder / "numpy.jsonl").write_text(captured_line(b"\x93NUMPY\x01\x00", "application/x-npy"))
    other = capture_folder(tmp_path, endpoint="someone-elses-endpoint")
    (other / "x.jsonl").write_text(line)
    report = monitor(tmp_path, baseline)
    problems = {issue["file"].rsplit("/", 1)[-1]: issue["problem"] for issue in report["files"]["issues"]}
    assert problems["empty.jsonl"].startswith("empty file")
    assert problems["truncated.jsonl"].startswith("truncated line")
    assert "unexpected content type 'application/x-npy'" in problems["numpy.jsonl"]
    assert "captured by endpoint 'someone-elses-endpoint'" in problems["x.jsonl"]
    # The readable records (the good file and the truncated file's whole line) are still judged.
    assert report["records"] == WINDOW_ROWS + 1 and report["status"] == mon.NO_DRIFT


def test_an_empty_window_is_no_traffic_not_no_drift(tmp_path: Path, baseline: Any) -> None:
    report = monitor(tmp_path / "nothing-captured", baseline)
    assert report["status"] == mon.NO_TRAFFIC
    assert report["records"] == 0 and report["features"] == []


def test_psi_noise_floor_shrinks_with_the_window() -> None:
    assert drift.psi_floor(10, 50) > 0.2 > drift.psi_floor(10, 1000)
    assert drift.chi2_quantile(9) == pytest.approx(27.88, rel=0.01)
    assert drift.psi([10] * 10, [10] * 10) == 0.0
    assert math.isinf(drift.linf_floor(0))


# --- model quality -----------------------------------------------------------------------------


def _scored(n: int, seed: int, accuracy: float) -> tuple[list[tuple[Row, float]], dict[int, str]]:
    rng = np.random.default_rng(seed)
    scored, truth = [], {}
    for k, row in enumerate(rows(n, seed)):
        positive = bool(rng.random() < 0.4)
        right = rng.random() < accuracy
        says_positive = positive if right else not positive
        scored.append((row, float(rng.uniform(0.6, 1.0) if says_positive else rng.uniform(0.0, 0.4))))
        truth[k] = "yes" if positive else "no"
    return scored, truth


@pytest.mark.parametrize(("accuracy", "status"), [(0.97, mon.NO_DRIFT), (0.6, mon.VIOLATIONS_FOUND)])
def test_model_quality_joins_ground_truth_by_inference_id(
    accuracy: float, status: str, tmp_path: Path
) -> None:
    scored, truth = _scored(400, seed=5, accuracy=accuracy)
    ids = write_predictions(tmp_path / "capture", scored)
    write_ground_truth(tmp_path / "truth", {ids[k]: label for k, label in truth.items()})
    constraints = baselining.model_quality(MQ_STATISTICS, QUALITY)
    reader = captured.CaptureReader(tmp_path / "capture", columns=SCHEMA.features, endpoint=ENDPOINT)
    _, report = monitoring.model_quality(reader, SCHEMA, MQ_STATISTICS, constraints, tmp_path / "truth")
    assert report["labelled_records"] == 400
    assert report["status"] == status
    if status == mon.VIOLATIONS_FOUND:
        failed = {v["metric_name"] for v in monitoring.quality_violations(report)}
        assert {"accuracy", "auc"} <= failed


def test_model_quality_without_ground_truth_is_not_judged(tmp_path: Path) -> None:
    scored, _ = _scored(100, seed=6, accuracy=0.5)
    write_predictions(tmp_path / "capture", scored)
    constraints = baselining.model_quality(MQ_STATISTICS, QUALITY)
    reader = captured.CaptureReader(tmp_path / "capture", columns=SCHEMA.features, endpoint=ENDPOINT)
    _, report = monitoring.model_quality(reader, SCHEMA, MQ_STATISTICS, constraints, None)
    assert report["status"] == mon.NO_GROUND_TRUTH and report["violations"] == 0


# --- the entrypoints on the container contract -------------------------------------------------


def _baseline_job(tmp_path: Path) -> Sandbox:
    job = Sandbox(tmp_path / "baseline", SCHEMA_FIELDS)
    records = job.processing_input("baseline_records")
    records.mkdir(parents=True)
    (records / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(TRAINING_ROWS, seed=1)))
    evaluation = job.processing_input("evaluation")
    evaluation.mkdir(parents=True)
    (evaluation / "evaluation.json").write_text(json.dumps(MQ_STATISTICS))
    check(job.run("baseline.py", "--thresholds", json.dumps({"drift": DRIFT, "quality": QUALITY})))
    return job


def test_baseline_and_monitor_entrypoints_follow_the_container_contract(tmp_path: Path) -> None:
    baseline_out = _baseline_job(tmp_path).processing_output("baseline")
    assert sorted(p.relative_to(baseline_out).as_posix() for p in baseline_out.rglob("*.json")) == [
        "data-quality/constraints.json",
        "data-quality/statistics.json",
        "model-quality/constraints.json",
        "model-quality/statistics.json",
    ]
    job = Sandbox(tmp_path / "monitor", SCHEMA_FIELDS)
    endpoint_data = job.processing_input("endpoint")
    write_capture(endpoint_data, rows(WINDOW_ROWS, seed=7, change=_shift_spend))
    result = check(
        job.run(
            "monitor.py",
            "data-quality",
            dataset_source=str(endpoint_data),
            output_path=str(job.base / "processing" / "resultdata"),
            baseline_statistics=str(baseline_out / "data-quality" / "statistics.json"),
            baseline_constraints=str(baseline_out / "data-quality" / "constraints.json"),
            publish_cloudwatch_metrics="Enabled",
            sagemaker_endpoint_name=ENDPOINT,
            sagemaker_monitoring_schedule_name="drift-hourly",
            end_time="2026-12-03T11:00:00Z",
        )
    )
    assert "violations" in result.stdout
    out = job.base / "processing" / "resultdata"
    violations = json.loads((out / mon.VIOLATIONS_FILE).read_text())["violations"]
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [
        ("spend", mon.BASELINE_DRIFT_CHECK)
    ]
    assert json.loads((out / mon.STATISTICS_FILE).read_text())["dataset"]["item_count"] == WINDOW_ROWS
    lines = (job.base / "output" / "metrics" / "cloudwatch" / mon.METRICS_FILE).read_text().splitlines()
    metrics = {m["MetricName"]: m for m in map(json.loads, lines)}
    assert metrics[mon.VIOLATIONS_METRIC]["Value"] == 1
    assert metrics[mon.VIOLATIONS_METRIC]["Dimensions"] == [
        {"Name": "Endpoint", "Value": ENDPOINT},
        {"Name": "MonitoringSchedule", "Value": "drift-hourly"},
    ]
    assert metrics["feature_baseline_drift_spend"]["Timestamp"] == "2026-12-03T11:00:00Z"


def test_monitor_without_a_baseline_fails_with_the_fix(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "monitor", SCHEMA_FIELDS)
    result = job.run("monitor.py", "data-quality")
    assert result.returncode == 1
    assert "baseline constraints" in job.failure and "DriftCheckBaselines" in job.failure
