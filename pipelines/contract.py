"""The project image's contract as the pipeline sees it: entrypoints, paths, channels, content types.

The pipeline-side facts the builder, the perimeter check and the local engine share. What the image
itself also knows (environment variable names, metric definitions, the model and evaluation.json
layouts) lives in ``rookery_contracts``, which the image ships.
"""

from __future__ import annotations

from typing import Final

PROGRAM_DIR: Final = "/opt/program"
PROFILE_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/preprocess_profile.py")
FIT_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/preprocess_fit.py")
PREPROCESS_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/preprocess.py")
EVALUATE_ENTRYPOINT: Final = ("python3", f"{PROGRAM_DIR}/evaluate.py")

PROCESSING_INPUT_ROOT: Final = "/opt/ml/processing/input"
PROCESSING_OUTPUT_ROOT: Final = "/opt/ml/processing/output"
CHECKPOINT_LOCAL_PATH: Final = "/opt/ml/checkpoints"

# Preprocessing runs as three jobs on ProcessingInstanceCount instances, each reading the raw input
# ShardedByS3Key: Profile writes every shard's profile; Fit reads its shard and every profile
# (FullyReplicated) and writes every shard's training statistics and the plan; Preprocess reads its
# shard and the whole Fit output, and writes the splits. Every instance of a job uploads into the
# same output prefix, so the image names a host's files after the host when there are several.
PROFILE_OUTPUT: Final = "profile"
FIT_OUTPUT: Final = "fit"
# (entrypoint, the input it reads from the previous job's output of that name, the output it writes)
PREPROCESS_PASSES: Final = (
    (PROFILE_ENTRYPOINT, None, PROFILE_OUTPUT),
    (FIT_ENTRYPOINT, PROFILE_OUTPUT, FIT_OUTPUT),
    (PREPROCESS_ENTRYPOINT, FIT_OUTPUT, None),
)
# Preprocess: one ProcessingOutput per artifact (each its own S3 prefix).
# The training split as raw records, for the Baseline step. No output name may be a prefix of
# another: each is an S3 prefix, and SageMaker stages every object under the prefix it is given.
TRAINING_RECORDS: Final = "baseline_records"
RAW_INPUT: Final = "raw"
PREPROCESS_OUTPUTS: Final = (
    "train", "validation", "test", "inference", "preprocessor", "report", TRAINING_RECORDS,
)  # fmt: skip

# Training channels (SageMaker mounts them at /opt/ml/input/data/<channel>).
TRAIN_CHANNELS: Final = ("train", "validation")
PREPROCESSOR_CHANNEL: Final = "preprocessor"
TRAIN_CONTENT_TYPE: Final = "text/csv"
# With several training instances each gets its share of the train channel's objects (Preprocess
# writes one file per training instance: --train-files); every instance reads all of validation.
SHARDED_CHANNEL: Final = "train"
SHARDED: Final = "ShardedByS3Key"
# How often (in boosting rounds) the project image writes /opt/ml/checkpoints.
CHECKPOINT_FREQUENCY: Final = 10

# Evaluate: inputs mounted under /opt/ml/processing/input/<name>, one output folder.
EVALUATE_INPUTS: Final = ("model", "test", "validation")
EVALUATION_OUTPUT: Final = "evaluation"
EVALUATION_PROPERTY_FILE: Final = "EvaluationReport"

# Baseline: the training split's raw records and evaluation.json in, the monitoring baseline out.
BASELINE_INPUTS: Final = (TRAINING_RECORDS, EVALUATION_OUTPUT)
BASELINE_OUTPUT: Final = "baseline"

# Serving: what the registered model declares it accepts and answers.
INFERENCE_CONTENT_TYPES: Final = ("text/csv", "application/json", "application/jsonlines")
INFERENCE_RESPONSE_TYPES: Final = ("application/json", "application/jsonlines", "text/csv")

# Batch transform of the test split: JSON lines in, JSON lines out, one record per line.
TRANSFORM_INPUT: Final = "inference"
TRANSFORM_CONTENT_TYPE: Final = "application/jsonlines"


def processing_input_path(name: str) -> str:
    return f"{PROCESSING_INPUT_ROOT}/{name}"


def processing_output_path(name: str) -> str:
    return f"{PROCESSING_OUTPUT_ROOT}/{name}"
