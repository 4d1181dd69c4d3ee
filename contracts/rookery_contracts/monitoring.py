"""Model monitoring as the project image, the Serving stack and the local monitor share it.

The monitor follows SageMaker Model Monitor's contract for custom ("bring your own") containers:
SageMaker runs the image as a processing job with the environment below, the window's capture
files under :data:`ENDPOINT_INPUT_PATH` (``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``) and the
baseline files under :data:`BASELINE_PATH`; the job writes ``statistics.json`` and
``constraint_violations.json`` (Model Monitor's layouts, so Studio shows them) plus rookery's
:data:`REPORT_FILE` to ``output_path``, and its CloudWatch metrics as JSON lines under
:data:`CLOUDWATCH_METRICS_PATH` when ``publish_cloudwatch_metrics`` is ``Enabled``.

The baseline comes out of the pipeline (the Baseline step): ``statistics.json`` and
``constraints.json`` of the training split for data quality, and ``evaluation.json`` plus a
model-quality ``constraints.json`` for model quality. Thresholds travel inside the constraints
(``monitoring_config`` and each feature's ``monitoringConfigOverrides``), so a model is always
judged by the thresholds it was registered with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# --- the job's environment (set by SageMaker, or by the local monitor) --------------------------
DATASET_FORMAT_ENV: Final = "dataset_format"
DATASET_SOURCE_ENV: Final = "dataset_source"
OUTPUT_PATH_ENV: Final = "output_path"
PUBLISH_METRICS_ENV: Final = "publish_cloudwatch_metrics"
ENDPOINT_NAME_ENV: Final = "sagemaker_endpoint_name"
SCHEDULE_NAME_ENV: Final = "sagemaker_monitoring_schedule_name"
START_TIME_ENV: Final = "start_time"
END_TIME_ENV: Final = "end_time"
BASELINE_CONSTRAINTS_ENV: Final = "baseline_constraints"
BASELINE_STATISTICS_ENV: Final = "baseline_statistics"
# Where ground truth lies when it is not merged into the capture records already (the local monitor
# stages the ground-truth prefix there; on AWS the model-quality job definition merges it).
GROUND_TRUTH_SOURCE_ENV: Final = "ground_truth_source"
METRICS_ENABLED: Final = "Enabled"
CAPTURE_DATASET_FORMAT: Final = (
    '{"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}'
)

# --- the job's locations ------------------------------------------------------------------------
ENDPOINT_INPUT_PATH: Final = "/opt/ml/processing/input/endpoint"
GROUND_TRUTH_PATH: Final = "/opt/ml/processing/input/ground_truth"
BASELINE_PATH: Final = "/opt/ml/processing/baseline"
BASELINE_STATISTICS_PATH: Final = f"{BASELINE_PATH}/statistics/statistics.json"
BASELINE_CONSTRAINTS_PATH: Final = f"{BASELINE_PATH}/constraints/constraints.json"
RESULT_PATH: Final = "/opt/ml/processing/resultdata"
CLOUDWATCH_METRICS_PATH: Final = "/opt/ml/output/metrics/cloudwatch"

# The monitor entrypoint and its two kinds of job (the first container argument).
MONITOR_ENTRYPOINT: Final = ("python3", "/opt/program/monitor.py")
DATA_QUALITY: Final = "data-quality"
MODEL_QUALITY: Final = "model-quality"
MONITOR_KINDS: Final = (DATA_QUALITY, MODEL_QUALITY)

# --- files --------------------------------------------------------------------------------------
STATISTICS_FILE: Final = "statistics.json"
CONSTRAINTS_FILE: Final = "constraints.json"
VIOLATIONS_FILE: Final = "constraint_violations.json"
REPORT_FILE: Final = "monitoring_report.json"
METRICS_FILE: Final = "metrics.jsonl"

# --- Model Monitor's violation check types ------------------------------------------------------
DATA_TYPE_CHECK: Final = "data_type_check"
COMPLETENESS_CHECK: Final = "completeness_check"
BASELINE_DRIFT_CHECK: Final = "baseline_drift_check"
MISSING_COLUMN_CHECK: Final = "missing_column_check"
CATEGORICAL_VALUES_CHECK: Final = "categorical_values_check"
# Model quality: a metric below its baseline constraint.
LESS_THAN_THRESHOLD: Final = "LessThanThreshold"

# --- distances ----------------------------------------------------------------------------------
# Numeric features: population stability index over the baseline's quantile bins; categorical
# features: the largest absolute difference of a category's share (L-infinity).
PSI: Final = "psi"
LINF: Final = "linf"

# --- what the report says about the window ------------------------------------------------------
NO_TRAFFIC: Final = "no traffic"
NO_DRIFT: Final = "no violations"
VIOLATIONS_FOUND: Final = "violations"
NO_GROUND_TRUTH: Final = "no ground truth"

# --- CloudWatch ---------------------------------------------------------------------------------
# The namespaces SageMaker publishes a real-time endpoint's monitoring metrics to, with the
# dimensions the container adds (Endpoint, MonitoringSchedule).
DATA_METRICS_NAMESPACE: Final = "/aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS_NAMESPACE: Final = "/aws/sagemaker/Endpoints/model-metrics"
ENDPOINT_DIMENSION: Final = "Endpoint"
SCHEDULE_DIMENSION: Final = "MonitoringSchedule"
# Every job emits these two: the alarms watch the violation count; the record count tells an empty
# window from a clean one.
VIOLATIONS_METRIC: Final = "rookery_violations"
RECORDS_METRIC: Final = "rookery_records"
# Per feature (data quality), as the prebuilt container names them.
DRIFT_METRIC_PREFIX: Final = "feature_baseline_drift_"
NON_NULL_METRIC_PREFIX: Final = "feature_non_null_"

# The classification metrics model quality compares with the baseline (evaluation.json's names).
QUALITY_METRICS: Final = ("accuracy", "precision", "recall", "specificity", "f1", "auc")


def kind_namespace(kind: str) -> str:
    """The CloudWatch namespace a monitoring job of ``kind`` publishes to."""
    if kind == DATA_QUALITY:
        return DATA_METRICS_NAMESPACE
    if kind == MODEL_QUALITY:
        return MODEL_METRICS_NAMESPACE
    raise ValueError(f"unknown monitoring kind {kind!r}; choose from {list(MONITOR_KINDS)}")


# --- the Baseline step --------------------------------------------------------------------------
BASELINE_ENTRYPOINT: Final = ("python3", "/opt/program/baseline.py")
# The thresholds the step writes into the constraints (``--thresholds`` JSON: {"drift": {...},
# "quality": {...}}), by the names of the stage's monitoring.drift and monitoring.quality fields.
DRIFT_THRESHOLDS: Final = (
    "numeric_psi",
    "categorical_linf",
    "missing_rate_increase",
    "invalid_share",
    "unknown_category_share",
)
QUALITY_THRESHOLDS: Final = ("max_drop", "min_labelled_records")


def baseline_file(kind: str, name: str) -> str:
    """A baseline file's path inside the Baseline step's output: ``data-quality/statistics.json``."""
    if kind not in MONITOR_KINDS:
        raise ValueError(f"unknown monitoring kind {kind!r}; choose from {list(MONITOR_KINDS)}")
    return f"{kind}/{name}"


def baseline_root(drift_check_baselines: Mapping[str, Any]) -> str:
    """The Baseline step's output prefix from a model package's ``DriftCheckBaselines``.

    The deployer sets the Serving stack's ``MonitoringBaselineUri`` to this when it deploys a
    version; the schedules find the four files under it by :func:`baseline_file`. ValueError when the
    package carries no baseline of this layout (registered before the Baseline step).
    """
    section = (
        drift_check_baselines.get("ModelDataQuality") if isinstance(drift_check_baselines, Mapping) else None
    )
    uri = ((section or {}).get("Statistics") or {}).get("S3Uri") if isinstance(section, Mapping) else None
    suffix = "/" + baseline_file(DATA_QUALITY, STATISTICS_FILE)
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri.endswith(suffix):
        raise ValueError(
            f"DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri = {uri!r} is not a Baseline step's "
            f"...{suffix}; register the version with a pipeline that has the Baseline step"
        )
    return uri[: -len(suffix)]
