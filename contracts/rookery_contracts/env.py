"""The environment variables rookery's shipped code reads, and who sets each one.

The project image's jobs and server read the first group; SageMaker (or the local engine) sets the
``SAGEMAKER_*``/``SM_*`` ones and the pipeline definition the ``ROOKERY_*`` ones. The Lambda
functions read the second group, set by their CDK constructs (and by the local Firehose emulator).
"""

from __future__ import annotations

from typing import Final

# --- the project image -------------------------------------------------------------------------

# Root of the /opt/ml contract (default /opt/ml); tests and the local engine point it at a sandbox.
BASE_DIR_ENV: Final = "SAGEMAKER_BASE_DIR"
# Single locations that override the contract's defaults when set (as SageMaker's toolkits do):
# the model folder, the output data folder, and one training channel's folder (SM_CHANNEL_<NAME>).
MODEL_DIR_ENV: Final = "SM_MODEL_DIR"
OUTPUT_DATA_DIR_ENV: Final = "SM_OUTPUT_DATA_DIR"
CHANNEL_DIR_ENV_PREFIX: Final = "SM_CHANNEL_"
# Preprocess: the stage's dataset schema as JSON (rookery_contracts.schema.DatasetSchema.to_json()).
DATASET_SCHEMA_ENV: Final = "ROOKERY_DATASET_SCHEMA"
# Serve: the decision threshold (0..1) overriding the model's metadata.json fallback. The pipeline
# sets it from evaluation.json (rookery_contracts.evaluation.THRESHOLD_PATH), so the threshold
# travels with the registered model.
DECISION_THRESHOLD_ENV: Final = "ROOKERY_DECISION_THRESHOLD"
# Serve: what a category the model never saw gets: "error" (default, HTTP 400) or "ignore" (no level).
UNKNOWN_CATEGORY_ENV: Final = "ROOKERY_UNKNOWN_CATEGORY"
# Serve: listen address (default 0.0.0.0; the local engine and tests use 127.0.0.1).
BIND_HOST_ENV: Final = "ROOKERY_BIND_HOST"
# Serve: port (default 8080), worker processes (default: the usable CPUs) and the seconds allowed to
# receive a request body (408 after), keep a connection alive and shut down gracefully (default 60).
BIND_PORT_ENV: Final = "SAGEMAKER_BIND_TO_PORT"
SERVER_WORKERS_ENV: Final = "SAGEMAKER_MODEL_SERVER_WORKERS"
SERVER_TIMEOUT_ENV: Final = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
# Train on several hosts (resourceconfig.json): where the workers reach the XGBoost tracker the first
# host runs (default: the first host's name and port 9099; the local engine sets 127.0.0.1 and a free
# port), and the seconds a host may go without progress with its peers: to join, in any collective
# step, or over one boosting round (default 600).
COLLECTIVE_HOST_ENV: Final = "ROOKERY_COLLECTIVE_HOST"
COLLECTIVE_PORT_ENV: Final = "ROOKERY_COLLECTIVE_PORT"
COLLECTIVE_TIMEOUT_ENV: Final = "ROOKERY_COLLECTIVE_TIMEOUT"
# Train and evaluate default it to PASSIVE: spinning OpenMP threads made XGBoost ~25x slower whenever
# another process shared the cores. An explicit value wins.
OMP_WAIT_POLICY_ENV: Final = "OMP_WAIT_POLICY"

# --- the Lambda functions ------------------------------------------------------------------------

# firehose_transform reads DATASET_SCHEMA_ENV (above), like the preprocess job.
# pipeline_trigger: the pipeline to start (name or ARN), the dataset's raw-bucket prefix (new objects
# under it start a run on s3://<bucket>/<prefix>), Firehose's error prefix (ignored) and the pipeline
# parameter that receives the input URI (optional).
PIPELINE_NAME_ENV: Final = "PIPELINE_NAME"
DATA_PREFIX_ENV: Final = "DATA_PREFIX"
ERROR_PREFIX_ENV: Final = "ERROR_PREFIX"
INPUT_PARAMETER_ENV: Final = "INPUT_PARAMETER_NAME"
# pipeline_trigger, on a stage whose monitoring alarms retrain (all three or none): the raw bucket whose
# dataset prefix an alarm-started run reads, the alarms (a JSON array of names) and the minimum hours
# between runs the trigger starts for an alarm.
RAW_BUCKET_ENV: Final = "RAW_BUCKET"
RETRAIN_ALARMS_ENV: Final = "RETRAIN_ALARM_NAMES"
RETRAIN_INTERVAL_ENV: Final = "RETRAIN_MIN_INTERVAL_HOURS"
# model_deployer (every task of the deployer's state machine): the Serving stack to update (name or
# id), its model parameter and the monitoring baseline parameter set with it, the CloudFormation
# service role the update must use, the model package group to read, the endpoint and variant to
# verify, and the deployment event and metric to publish.
SERVING_STACK_ENV: Final = "SERVING_STACK"
MODEL_PARAMETER_ENV: Final = "MODEL_PARAMETER_NAME"
BASELINE_PARAMETER_ENV: Final = "BASELINE_PARAMETER_NAME"
DEPLOYMENT_ROLE_ENV: Final = "DEPLOYMENT_ROLE_ARN"
MODEL_PACKAGE_GROUP_ENV: Final = "MODEL_PACKAGE_GROUP_NAME"
ENDPOINT_NAME_ENV: Final = "ENDPOINT_NAME"
VARIANT_NAME_ENV: Final = "VARIANT_NAME"
DEPLOYMENT_EVENT_SOURCE_ENV: Final = "DEPLOYMENT_EVENT_SOURCE"
DEPLOYMENT_EVENT_TYPE_ENV: Final = "DEPLOYMENT_EVENT_TYPE"
DEPLOYMENT_METRIC_NAMESPACE_ENV: Final = "DEPLOYMENT_METRIC_NAMESPACE"
# Every function: Powertools' service name and metrics namespace (each function reads them for its
# Logger, Tracer and Metrics), log level and tracing switch (read by Powertools itself).
POWERTOOLS_SERVICE_ENV: Final = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_NAMESPACE_ENV: Final = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL_ENV: Final = "POWERTOOLS_LOG_LEVEL"
POWERTOOLS_TRACE_DISABLED_ENV: Final = "POWERTOOLS_TRACE_DISABLED"
