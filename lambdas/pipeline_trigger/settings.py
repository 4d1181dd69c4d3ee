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
``POWERTOOLS_SERVICE_NAME`` (optional, default ``pipeline_trigger``), ``POWERTOOLS_METRICS_NAMESPACE``
(optional, default ``Rookery``), and the other ``POWERTOOLS_*`` variables Powertools reads itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rookery_contracts.env import (
    DATA_PREFIX_ENV,
    ERROR_PREFIX_ENV,
    INPUT_PARAMETER_ENV,
    PIPELINE_NAME_ENV,
    POWERTOOLS_NAMESPACE_ENV,
    POWERTOOLS_SERVICE_ENV,
)
from rookery_contracts.pipeline import INPUT_DATA_PARAMETER

DEFAULT_SERVICE = "pipeline_trigger"
DEFAULT_NAMESPACE = "Rookery"

# The request shapes of StartPipelineExecution (botocore's sagemaker model).
_PIPELINE_NAME = re.compile(
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:([0-9]{12}|aws):pipeline/.*)?([a-zA-Z0-9](-*[a-zA-Z0-9]){0,255})$"
)
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or wrong; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    data_prefix: str
    error_prefix: str
    input_parameter: str = INPUT_DATA_PARAMETER
    service: str = DEFAULT_SERVICE
    metrics_namespace: str = DEFAULT_NAMESPACE


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
    )


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
