"""The function's configuration: every environment variable it reads, validated once at cold start.

Environment (set by the Lambda construct):

``ROOKERY_DATASET_SCHEMA`` (required)
    JSON of the dataset schema (``rookery_contracts.schema.DatasetSchema.to_json()``); no column may be
    named like the ingest metadata the function stamps (``rookery_contracts.ingest.METADATA_COLUMNS``).
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

from rookery_contracts.env import DATASET_SCHEMA_ENV, POWERTOOLS_NAMESPACE_ENV, POWERTOOLS_SERVICE_ENV
from rookery_contracts.ingest import METADATA_COLUMNS
from rookery_contracts.schema import DatasetSchema, SchemaError, parse_schema

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
    text = environ.get(DATASET_SCHEMA_ENV, "")
    if not text.strip():
        raise ConfigurationError(
            f"environment variable {DATASET_SCHEMA_ENV} is not set: the construct must set it to the JSON "
            "of the stage's dataset schema (stage.dataset.to_json())"
        )
    try:
        schema = parse_schema(text)
    except SchemaError as exc:
        raise ConfigurationError(f"environment variable {DATASET_SCHEMA_ENV} is invalid: {exc}") from None
    # This function's own rule: it stamps the ingest metadata on every record, so no column may take
    # one of those names.
    clash = sorted(set(schema.columns) & set(METADATA_COLUMNS))
    if clash:
        raise ConfigurationError(
            f"environment variable {DATASET_SCHEMA_ENV} is invalid: columns {clash} collide with the ingest "
            f"metadata this function stamps on every record {list(METADATA_COLUMNS)}; rename them in the "
            "dataset"
        )
    return Settings(
        schema=schema,
        service=environ.get(POWERTOOLS_SERVICE_ENV) or DEFAULT_SERVICE,
        metrics_namespace=environ.get(POWERTOOLS_NAMESPACE_ENV) or DEFAULT_NAMESPACE,
    )
