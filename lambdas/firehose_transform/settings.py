"""The function's configuration: every environment variable it reads, validated once at cold start.

Environment (set by the Lambda construct):

``ROOKERY_DATASET_SCHEMA`` (required)
    JSON of ``stage.DatasetSchema`` (``stage.dataset.model_dump_json()``).
``POWERTOOLS_SERVICE_NAME`` (optional, default ``firehose_transform``)
    service name on log lines, traces and metrics.
``POWERTOOLS_METRICS_NAMESPACE`` (optional, default ``Rookery``)
    CloudWatch namespace of the record counts.
``POWERTOOLS_LOG_LEVEL``, ``POWERTOOLS_TRACE_DISABLED``, ...
    read by Powertools itself, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from firehose_transform.schema import DatasetSchema, SchemaError, parse_schema

SCHEMA_ENV = "ROOKERY_DATASET_SCHEMA"
SERVICE_ENV = "POWERTOOLS_SERVICE_NAME"
NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_SERVICE = "firehose_transform"
DEFAULT_NAMESPACE = "Rookery"


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or wrong; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    schema: DatasetSchema
    service: str
    metrics_namespace: str


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the environment; raise ``ConfigurationError`` naming the variable."""
    text = environ.get(SCHEMA_ENV, "")
    if not text.strip():
        raise ConfigurationError(
            f"environment variable {SCHEMA_ENV} is not set: the construct must set it to the JSON of the "
            "stage's dataset schema (stage.dataset.model_dump_json())"
        )
    try:
        schema = parse_schema(text)
    except SchemaError as exc:
        raise ConfigurationError(f"environment variable {SCHEMA_ENV} is invalid: {exc}") from None
    return Settings(
        schema=schema,
        service=environ.get(SERVICE_ENV) or DEFAULT_SERVICE,
        metrics_namespace=environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE,
    )
