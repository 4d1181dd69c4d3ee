"""The function's configuration: every environment variable it reads, validated once at cold start.

Environment (set by the Lambda construct):

``PIPELINE_NAME`` (required)
    name (or ARN) of the SageMaker pipeline to start, e.g. ``rookery-dev-pipeline``.
``DATA_PREFIX`` (required)
    raw-bucket prefix of the dataset, e.g. ``penguins/`` (``stage.data.layout.data_prefix(dataset)``);
    new objects under it start a run whose input is ``s3://<bucket>/<DATA_PREFIX>``.
``ERROR_PREFIX`` (required)
    Firehose's error prefix, e.g. ``errors/`` (``stage.data.layout.error_prefix``); ignored.
``INPUT_PARAMETER_NAME`` (optional, default ``InputDataUri``)
    the pipeline parameter that receives the input URI.
``RAW_BUCKET``, ``RETRAIN_ALARM_NAMES``, ``RETRAIN_MIN_INTERVAL_HOURS`` (all three, or none)
    set where the stage's monitoring alarms retrain: the raw bucket (an alarm-started run reads
    ``s3://<RAW_BUCKET>/<DATA_PREFIX>``), the alarms as a JSON array of names, e.g.
    ``["rookery-prod-endpoint-data-quality-violations"]``, and the whole hours that must pass after a
    run the function started before an alarm may start another, e.g. ``24``. Unset: alarm events are
    ignored.
``POWERTOOLS_SERVICE_NAME`` (optional, default ``pipeline_trigger``), ``POWERTOOLS_METRICS_NAMESPACE``
(optional, default ``Rookery``), and the other ``POWERTOOLS_*`` variables Powertools reads itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from rookery_contracts.env import (
    DATA_PREFIX_ENV,
    ERROR_PREFIX_ENV,
    INPUT_PARAMETER_ENV,
    PIPELINE_NAME_ENV,
    POWERTOOLS_NAMESPACE_ENV,
    POWERTOOLS_SERVICE_ENV,
    RAW_BUCKET_ENV,
    RETRAIN_ALARMS_ENV,
    RETRAIN_INTERVAL_ENV,
)
from rookery_contracts.pipeline import INPUT_DATA_PARAMETER

DEFAULT_SERVICE = "pipeline_trigger"
DEFAULT_NAMESPACE = "Rookery"

# The request shapes of StartPipelineExecution (botocore's sagemaker model).
_PIPELINE_NAME = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:([0-9]{12}|aws):pipeline/.*)?([a-zA-Z0-9](-*[a-zA-Z0-9]){0,255})$"
)
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
# S3 bucket names (general purpose buckets): 3-63 lower-case letters, digits, '.' and '-'.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# CloudWatch alarm names: 1-255 characters.
_MAX_ALARM_NAME = 255
_RETRAIN_ENV = (RAW_BUCKET_ENV, RETRAIN_ALARMS_ENV, RETRAIN_INTERVAL_ENV)


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or wrong; the message names the variable and the fix."""


@dataclass(frozen=True)
class Retraining:
    """Which alarms start a run on ``s3://<raw_bucket>/<data prefix>``, and how often at most."""

    raw_bucket: str
    alarm_names: frozenset[str]
    min_interval: timedelta


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    data_prefix: str
    error_prefix: str
    input_parameter: str = INPUT_DATA_PARAMETER
    service: str = DEFAULT_SERVICE
    metrics_namespace: str = DEFAULT_NAMESPACE
    retraining: Retraining | None = None  # None: the stage's monitoring alarms only notify


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the environment; raise ``ConfigurationError`` naming the variable."""
    pipeline = _required(
        environ, PIPELINE_NAME_ENV, "the SageMaker pipeline's name, e.g. 'rookery-dev-pipeline'"
    )
    if not _PIPELINE_NAME.match(pipeline):
        raise ConfigurationError(
            f"environment variable {PIPELINE_NAME_ENV} = {pipeline!r} is not a SageMaker pipeline name "
            "(letters, digits and single hyphens, at most 256) or pipeline ARN"
        )
    data_prefix = _prefix(environ, DATA_PREFIX_ENV, "the dataset's raw-bucket prefix, e.g. 'penguins/'")
    error_prefix = _prefix(environ, ERROR_PREFIX_ENV, "Firehose's error prefix, e.g. 'errors/'")
    if data_prefix.startswith(error_prefix):
        raise ConfigurationError(
            f"environment variable {DATA_PREFIX_ENV} = {data_prefix!r} lies under {ERROR_PREFIX_ENV} = "
            f"{error_prefix!r}, so no object could ever start the pipeline; give them separate prefixes"
        )
    parameter = environ.get(INPUT_PARAMETER_ENV) or INPUT_DATA_PARAMETER
    if not _PARAMETER_NAME.match(parameter):
        raise ConfigurationError(
            f"environment variable {INPUT_PARAMETER_ENV} = {parameter!r} is not a pipeline parameter name "
            "(letters, digits, '-' and '_'); leave it unset for the default 'InputDataUri'"
        )
    return Settings(
        pipeline_name=pipeline,
        data_prefix=data_prefix,
        error_prefix=error_prefix,
        input_parameter=parameter,
        service=environ.get(POWERTOOLS_SERVICE_ENV) or DEFAULT_SERVICE,
        metrics_namespace=environ.get(POWERTOOLS_NAMESPACE_ENV) or DEFAULT_NAMESPACE,
        retraining=_retraining(environ),
    )


def _retraining(environ: Mapping[str, str]) -> Retraining | None:
    present = [name for name in _RETRAIN_ENV if environ.get(name, "").strip()]
    if not present:
        return None
    if len(present) < len(_RETRAIN_ENV):
        missing = [name for name in _RETRAIN_ENV if name not in present]
        raise ConfigurationError(
            f"environment variables {', '.join(present)} are set but {', '.join(missing)} not: alarms "
            f"retrain only with all of {', '.join(_RETRAIN_ENV)}; the construct sets all three or none"
        )
    bucket = environ[RAW_BUCKET_ENV].strip()
    if not _BUCKET_NAME.match(bucket):
        raise ConfigurationError(
            f"environment variable {RAW_BUCKET_ENV} = {bucket!r} is not an S3 bucket name; set it to the "
            "stage's raw bucket, e.g. 'rookery-prod-raw-123456789012-eu-west-1'"
        )
    return Retraining(
        raw_bucket=bucket,
        alarm_names=_alarm_names(environ[RETRAIN_ALARMS_ENV]),
        min_interval=timedelta(hours=_hours(environ[RETRAIN_INTERVAL_ENV])),
    )


def _alarm_names(text: str) -> frozenset[str]:
    example = "'[\"rookery-prod-endpoint-data-quality-violations\"]'"
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and 0 < len(n) <= _MAX_ALARM_NAME for n in names)
    ):
        raise ConfigurationError(
            f"environment variable {RETRAIN_ALARMS_ENV} = {text!r} is not a JSON array of alarm names "
            f"(1-{_MAX_ALARM_NAME} characters each); set it to e.g. {example}"
        )
    return frozenset(names)


def _hours(text: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"environment variable {RETRAIN_INTERVAL_ENV} = {text!r} is not a whole number of hours of at "
            "least 1; set it to the stage's monitoring.retrain_min_interval_hours, e.g. '24'"
        )
    return int(value)


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set: the construct must set it to {what}"
        )
    return value


def _prefix(environ: Mapping[str, str], name: str, what: str) -> str:
    value = _required(environ, name, what)
    if value.startswith("/") or not value.endswith("/"):
        raise ConfigurationError(
            f"environment variable {name} = {value!r} must be a key prefix ending in '/' and not starting "
            f"with '/'; set it to {what}"
        )
    return value
