"""Lambda entry points, one per state machine task: Powertools around ``flow`` and the AWS readers.

Each handler takes the state machine's state and returns it with what it learned and ``next`` set
(``rookery_contracts.deployer``). The environment is validated at import (cold start). An AWS error
the handler cannot classify is raised: the state machine retries the task's Lambda errors a few
times, then catches it and publishes it as a failed deployment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from model_deployer import flow
from model_deployer.endpoint import read_live
from model_deployer.registry import list_versions, read_baseline
from model_deployer.settings import load_settings
from model_deployer.stack import Operation, StackParameterError, read_operation, read_stack, start_update
from rookery_contracts.deployer import Task

SETTINGS = load_settings(os.environ)
logger = Logger(service=SETTINGS.service)
tracer = Tracer(service=SETTINGS.service)
metrics = Metrics(namespace=SETTINGS.metric_namespace, service=SETTINGS.service)


@dataclass(frozen=True)
class Clients:
    cloudformation: Any
    sagemaker: Any
    events: Any


@cache
def clients() -> Clients:
    """One set of clients per execution environment, created on first use (standard retries)."""
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return Clients(
        cloudformation=boto3.client("cloudformation", config=config),
        sagemaker=boto3.client("sagemaker", config=config),
        events=boto3.client("events", config=config),
    )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def decide(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    stack = read_stack(clients().cloudformation, SETTINGS.stack)
    state = flow.unavailable(event, now=now(), task=Task.DECIDE, stack_name=SETTINGS.stack, stack=stack)
    if state is None:
        assert stack is not None
        versions = list_versions(clients().sagemaker, SETTINGS.model_package_group)
        state = flow.decided(
            event, now=now(), stack=stack, versions=versions, parameter=SETTINGS.model_parameter
        )
    return _logged(Task.DECIDE, state)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def update(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cloudformation = clients().cloudformation
    stack = read_stack(cloudformation, SETTINGS.stack)
    state = flow.unavailable(event, now=now(), task=Task.UPDATE, stack_name=SETTINGS.stack, stack=stack)
    if state is None:
        assert stack is not None
        target = flow.decision_of(event).target
        if target is None:
            raise ValueError("update needs the decision's target; the decide task must run first")
        # The version's baseline travels with it: set in the same update (empty: monitoring off), so a
        # rollback restores the baseline of the version it restores.
        baseline = read_baseline(clients().sagemaker, target.arn)
        values = {SETTINGS.model_parameter: target.arn, SETTINGS.baseline_parameter: baseline.uri or ""}
        try:
            attempt = start_update(
                cloudformation,
                stack,
                values=values,
                role_arn=SETTINGS.deployment_role_arn,
                token=flow.request_token(event),
            )
        except StackParameterError as error:
            state = flow.failed(event, now=now(), task=Task.UPDATE, reason=str(error))
        else:
            state = flow.updated(event, now=now(), attempt=attempt, baseline=baseline)
    return _logged(Task.UPDATE, state)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def poll(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cloudformation = clients().cloudformation
    stack = read_stack(cloudformation, SETTINGS.stack)
    operation = (
        read_operation(cloudformation, stack.stack_id, str(event[flow.TOKEN_KEY]))
        if stack is not None
        else Operation(None)
    )
    state = flow.polled(event, now=now(), stack_name=SETTINGS.stack, stack=stack, operation=operation)
    return _logged(Task.POLL, state)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def verify(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    live = read_live(clients().sagemaker, SETTINGS.endpoint_name, SETTINGS.variant_name)
    stack = read_stack(clients().cloudformation, SETTINGS.stack)
    value = stack.value(SETTINGS.model_parameter) if stack is not None else None
    return _logged(Task.VERIFY, flow.verified(event, now=now(), live=live, stack_value=value))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def publish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = flow.publication(event, now=now(), endpoint=SETTINGS.endpoint_name)
    answer = clients().events.put_events(
        Entries=[
            {
                "Source": SETTINGS.event_source,
                "DetailType": SETTINGS.event_type,
                "Detail": json.dumps(detail),
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge did not accept the deployment event: {answer.get('Entries')}")
    metrics.add_dimension(name="Endpoint", value=SETTINGS.endpoint_name)
    metrics.add_metric(name=str(detail["status"]), unit=MetricUnit.Count, value=1)
    logger.info("deployment outcome published", extra={"detail": detail})
    return _logged(Task.PUBLISH, flow.published(event))


def _logged(task: Task, state: dict[str, Any]) -> dict[str, Any]:
    logger.info(
        f"{task} done",
        extra={
            "next": state.get("next"),
            "decision": state.get(flow.DECISION_KEY),
            "outcome": state.get(flow.OUTCOME_KEY),
            "monitoring": state.get(flow.MONITORING_KEY),
            "counters": state.get(flow.COUNTERS_KEY),
        },
    )
    return state
