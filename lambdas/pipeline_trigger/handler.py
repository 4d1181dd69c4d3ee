"""Lambda entry point for raw-bucket "Object Created" events and monitoring "Alarm State Change" events:
Powertools around ``plan`` and ``executions``.

The environment is validated at import (cold start). A malformed event is logged and raised, so
the asynchronous invocation is retried a bounded number of times and then lands in the function's
on-failure destination; idempotency makes those retries harmless. The return value is a JSON
object: ``status`` (``started`` | ``duplicate`` | ``rate_limited`` | ``ignored``), ``reason``,
``object_uri`` or ``alarm_name`` and, unless ignored, ``pipeline_name``, ``input_data_uri`` and
``client_request_token``, with ``pipeline_execution_arn`` (the run started or found) or, when rate
limited, ``recent_execution_arn`` (the run inside the window).
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

from pipeline_trigger.executions import RateLimited, start_once
from pipeline_trigger.plan import (
    AlarmTransition,
    Ignore,
    MalformedEventError,
    Subject,
    parse_event,
    plan,
    rate_limited_reason,
)
from pipeline_trigger.settings import load_settings

SETTINGS = load_settings(os.environ)
logger = Logger(service=SETTINGS.service)
tracer = Tracer(service=SETTINGS.service)
metrics = Metrics(namespace=SETTINGS.metrics_namespace, service=SETTINGS.service)


@cache
def sagemaker_client() -> Any:
    """One client per execution environment, created on first use (standard retries for throttling)."""
    return boto3.client("sagemaker", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def identity(subject: Subject) -> dict[str, str]:
    """What the event is about, as the result and the log keys name it."""
    if isinstance(subject, AlarmTransition):
        return {"alarm_name": subject.alarm_name}
    return {"object_uri": subject.uri}


@logger.inject_lambda_context(clear_state=True)  # keys appended below are per invocation
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        subject = parse_event(event)
    except MalformedEventError as exc:
        logger.error("rejected a malformed event", extra={"reason": str(exc), "event": event})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        raise
    about = identity(subject)
    alarm = isinstance(subject, AlarmTransition)
    logger.append_keys(**about)
    decision = plan(subject, SETTINGS)
    if isinstance(decision, Ignore):
        logger.info("alarm ignored" if alarm else "object ignored", extra={"reason": decision.reason})
        metrics.add_metric(
            name="AlarmsIgnored" if alarm else "ObjectsIgnored", unit=MetricUnit.Count, value=1
        )
        return {"status": "ignored", "reason": decision.reason, **about}

    tracer.put_annotation("client_request_token", decision.client_request_token)
    try:
        result = start_once(sagemaker_client(), decision)
    except Exception:
        # Raised on purpose: the asynchronous invocation is retried, then sent to the dead-letter queue.
        logger.exception("could not start the pipeline", extra={"pipeline_name": decision.pipeline_name})
        metrics.add_metric(name="StartFailures", unit=MetricUnit.Count, value=1)
        raise
    common = {
        **about,
        "pipeline_name": decision.pipeline_name,
        "input_data_uri": decision.input_uri,
        "client_request_token": decision.client_request_token,
    }
    if isinstance(result, RateLimited):
        reason = rate_limited_reason(decision, result.recent)
        logger.info("retraining rate limited", extra={"reason": reason})
        metrics.add_metric(name="RetrainingRateLimited", unit=MetricUnit.Count, value=1)
        return {
            "status": "rate_limited",
            "reason": reason,
            **common,
            "recent_execution_arn": result.recent.execution_arn,
        }
    if result.status == "duplicate":
        reason = f"an execution for this {'alarm transition' if alarm else 'object'} exists already"
    elif alarm:
        reason = f"{decision.cause}: retraining on {decision.input_uri}"
    else:
        reason = f"new data under {decision.input_uri}"
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
        **common,
        "pipeline_execution_arn": result.execution_arn,
    }
