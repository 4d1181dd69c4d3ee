"""Lambda entry point for raw-bucket "Object Created" events: Powertools around ``plan`` and ``executions``.

The environment is validated at import (cold start). A malformed event is logged and raised, so
the asynchronous invocation is retried a bounded number of times and then lands in the function's
on-failure destination; idempotency makes those retries harmless. The return value is a JSON
object: ``status`` (``started`` | ``duplicate`` | ``ignored``), ``reason``, ``object_uri`` and, when a
run was started or found, ``pipeline_name``, ``input_data_uri``, ``client_request_token`` and
``pipeline_execution_arn``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pipeline_trigger.executions import start_once
from pipeline_trigger.plan import Ignore, MalformedEventError, parse_object_created, plan
from pipeline_trigger.settings import load_settings

SETTINGS = load_settings(os.environ)
logger = Logger(service=SETTINGS.service)
tracer = Tracer(service=SETTINGS.service)
metrics = Metrics(namespace=SETTINGS.metrics_namespace, service=SETTINGS.service)


@cache
def sagemaker_client() -> Any:
    """One client per execution environment, created on first use (standard retries for throttling)."""
    return boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@logger.inject_lambda_context(clear_state=True)  # keys appended below are per invocation
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        obj = parse_object_created(event)
    except MalformedEventError as exc:
        logger.error("rejected a malformed event", extra={"reason": str(exc), "event": event})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        raise
    logger.append_keys(object_uri=obj.uri)
    decision = plan(obj, SETTINGS)
    if isinstance(decision, Ignore):
        logger.info("object ignored", extra={"reason": decision.reason})
        metrics.add_metric(name="ObjectsIgnored", unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "reason": decision.reason, "object_uri": obj.uri}

    tracer.put_annotation("client_request_token", decision.client_request_token)
    try:
        result = start_once(sagemaker_client(), decision)
    except Exception:
        # Raised on purpose: the asynchronous invocation is retried, then sent to the dead-letter queue.
        logger.exception("could not start the pipeline", extra={"pipeline_name": decision.pipeline_name})
        metrics.add_metric(name="StartFailures", unit=MetricUnit.Count, value=1)
        raise
    reason = (
        "an execution for this object exists already"
        if result.status == "duplicate"
        else f"new data under {decision.input_uri}"
    )
    logger.info(
        "pipeline execution " + result.status,
        extra={"execution_arn": result.execution_arn, "client_request_token": decision.client_request_token},
    )
    metrics.add_metric(
        name="ExecutionsStarted" if result.status == "started" else "DuplicateEvents",
        unit=MetricUnit.Count,
        value=1,
    )
    return {
        "status": result.status,
        "reason": reason,
        "object_uri": obj.uri,
        "pipeline_name": decision.pipeline_name,
        "input_data_uri": decision.input_uri,
        "client_request_token": decision.client_request_token,
        "pipeline_execution_arn": result.execution_arn,
    }
