"""The shared formats besides the schema: metric log lines, ingest stamping, evaluation.json paths."""

from __future__ import annotations

import re

import pytest

from rookery_contracts import evaluation, ingest, metrics, monitoring


def test_every_metric_definition_parses_the_value_the_image_prints() -> None:
    names = {d["Name"] for d in metrics.METRIC_DEFINITIONS}
    assert metrics.OBJECTIVE_METRIC in names
    assert len(names) == len(metrics.EVALUATED_CHANNELS) * len(metrics.METRIC_NAMES)
    for definition in metrics.METRIC_DEFINITIONS:
        channel, metric = definition["Name"].split(":")
        line = "[3] " + " ".join(
            metrics.log_item(metrics.log_name(c, m), 0.5 + i / 1000)
            for i, (c, m) in enumerate(
                (c, m) for c in metrics.EVALUATED_CHANNELS for m in metrics.METRIC_NAMES
            )
        )
        found = re.findall(definition["Regex"], line)
        assert len(found) == 1, (definition, line)  # auc does not also match aucpr
        assert f"{metrics.log_name(channel, metric)}:{found[0]}" in line.split()


def test_values_print_with_fixed_decimals_never_exponents() -> None:
    assert metrics.log_item("validation-logloss", 1e-7) == "validation-logloss:0.000000"
    assert metrics.log_item("train-auc", 0.98765432) == "train-auc:0.987654"


def test_the_ingest_timestamp_is_utc_iso_8601_with_milliseconds() -> None:
    assert ingest.ingest_timestamp(1_714_564_800_123) == "2024-05-01T12:00:00.123Z"
    assert ingest.ingest_timestamp(0) == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="out of range"):
        ingest.ingest_timestamp(10**20)


def test_stamping_appends_the_metadata_after_the_schema_columns() -> None:
    stamped = ingest.stamp({"b": 1, "a": None}, ingest_ts="2024-05-01T12:00:00.123Z", record_id="r1")
    assert list(stamped) == ["b", "a", *ingest.METADATA_COLUMNS]
    assert stamped == {
        "b": 1,
        "a": None,
        "_ingest_ts": "2024-05-01T12:00:00.123Z",
        "_firehose_record_id": "r1",
    }


DOCUMENT = {
    "binary_classification_metrics": {"auc": {"value": 0.97, "standard_deviation": 0.01}},
    "decision_threshold": {"value": 0.41, "operating_point": "min_sensitivity:0.85"},
    "operating_point": {"metric": "recall", "value": 0.96, "bar": 0.85, "met": 1},
}


def test_paths_read_evaluation_json_as_a_pipeline_json_get_does() -> None:
    assert [evaluation.value_at(DOCUMENT, p) for p in evaluation.GATE_PATHS] == [
        0.97,
        "recall",
        0.96,
        0.85,
        1,
    ]
    assert evaluation.value_at(DOCUMENT, evaluation.THRESHOLD_PATH) == 0.41
    assert evaluation.value_at(DOCUMENT, evaluation.THRESHOLD_RULE_PATH) == "min_sensitivity:0.85"
    assert evaluation.AUC_PATH == "binary_classification_metrics.auc.value"


def test_an_absent_value_is_the_default_or_an_error_naming_the_path() -> None:
    assert evaluation.value_at({}, evaluation.AUC_PATH, None) is None
    assert evaluation.value_at({"operating_point": None}, evaluation.OPERATING_POINT_BAR_PATH, "-") == "-"
    with pytest.raises(evaluation.EvaluationError, match=r"has no 'decision_threshold.value' \(no 'value'"):
        evaluation.value_at({"decision_threshold": {}}, evaluation.THRESHOLD_PATH)


def test_the_baseline_root_is_read_from_a_packages_drift_check_baselines() -> None:
    root = "s3://rookery-dev-artifacts/rookery-dev-pipeline/abc123/Baseline/baseline"
    baselines = {
        "ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": f"{root}/data-quality/statistics.json"}
        }
    }
    assert monitoring.baseline_root(baselines) == root
    for broken in ({}, {"ModelDataQuality": {"Statistics": {"S3Uri": f"{root}/other.json"}}}):
        with pytest.raises(
            ValueError, match="register the version with a pipeline that has the Baseline step"
        ):
            monitoring.baseline_root(broken)
