"""The project image's contract as the pipeline sees it: paths, entrypoints, channels, metrics.

One place for each fact the definition relies on, so the builder, the perimeter check and the
local engine agree with ``containers/`` (see ``containers/README.md``).
"""

from __future__ import annotations

from typing import Final

PROGRAM_DIR: Final = "/opt/program"
PREPROCESS_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/preprocess.py")
EVALUATE_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/evaluate.py")

PROCESSING_INPUT_ROOT: Final = "/opt/ml/processing/input"
PROCESSING_OUTPUT_ROOT: Final = "/opt/ml/processing/output"
CHECKPOINT_LOCAL_PATH: Final = "/opt/ml/checkpoints"

# Preprocess: one input, one ProcessingOutput per artifact (each its own S3 prefix).
RAW_INPUT: Final = "raw"
PREPROCESS_OUTPUTS: Final = ("train", "validation", "test", "inference", "preprocessor", "report")
DATASET_SCHEMA_ENV: Final = "ROOKERY_DATASET_SCHEMA"

# Training channels (SageMaker mounts them at /opt/ml/input/data/<channel>).
TRAIN_CHANNELS: Final = ("train", "validation")
PREPROCESSOR_CHANNEL: Final = "preprocessor"
TRAIN_CONTENT_TYPE: Final = "text/csv"
# How often (in boosting rounds) the project image writes /opt/ml/checkpoints.
CHECKPOINT_FREQUENCY: Final = 10

# Per-round metrics the image prints (``validation-auc:0.9612``); names as SageMaker's built-in
# XGBoost reports them, so a tuning objective reads the same with either image. The image keeps
# the same list (rookery_image.contract.METRIC_DEFINITIONS); a test holds the two equal.
METRIC_NAMES: Final = ("auc", "aucpr", "logloss", "error")
METRIC_DEFINITIONS: Final = tuple(
    {"Name": f"{channel}:{metric}", "Regex": f"{channel}-{metric}:([0-9.]+)"}
    for channel in ("train", "validation")
    for metric in METRIC_NAMES
)
OBJECTIVE_METRIC: Final = "validation:auc"

# Evaluate: inputs mounted under /opt/ml/processing/input/<name>, one output folder.
EVALUATE_INPUTS: Final = ("model", "test", "validation")
EVALUATION_OUTPUT: Final = "evaluation"
EVALUATION_FILE: Final = "evaluation.json"
EVALUATION_PROPERTY_FILE: Final = "EvaluationReport"
# JSON paths inside evaluation.json (SageMaker's model-quality layout plus rookery's fields).
AUC_PATH: Final = "binary_classification_metrics.auc.value"
THRESHOLD_PATH: Final = "decision_threshold.value"
OPERATING_POINT_METRIC_PATH: Final = "operating_point.metric"
OPERATING_POINT_VALUE_PATH: Final = "operating_point.value"
OPERATING_POINT_BAR_PATH: Final = "operating_point.bar"
OPERATING_POINT_MET_PATH: Final = "operating_point.met"

# The model folder train writes (packed by SageMaker into model.tar.gz) and Evaluate and serving
# load: booster, fitted preprocessor, metadata. The image keeps the same names (rookery_image.model);
# a test holds the two equal.
MODEL_LAYOUT: Final = ("xgboost-model.ubj", "preprocessor.json", "metadata.json")

# Serving: the decision threshold travels with the registered model as an environment variable.
DECISION_THRESHOLD_ENV: Final = "ROOKERY_DECISION_THRESHOLD"
INFERENCE_CONTENT_TYPES: Final = ("text/csv", "application/json", "application/jsonlines")
INFERENCE_RESPONSE_TYPES: Final = ("application/json", "application/jsonlines", "text/csv")

# Batch transform of the test split: JSON lines in, JSON lines out, one record per line.
TRANSFORM_INPUT: Final = "inference"
TRANSFORM_CONTENT_TYPE: Final = "application/jsonlines"


def processing_input_path(name: str) -> str:
    return f"{PROCESSING_INPUT_ROOT}/{name}"


def processing_output_path(name: str) -> str:
    return f"{PROCESSING_OUTPUT_ROOT}/{name}"
