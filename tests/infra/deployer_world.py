"""The AWS a deployer execution runs against in the flow tests.

- SageMaker (the model registry, each version with the drift-check baselines Register attaches unless
  a test registers it without, and the endpoint) and EventBridge with an SQS queue that receives
  every published deployment event: moto.
- CloudFormation: ``ServingStack``, a small fake of the Serving stack's API (``DescribeStacks``,
  ``DescribeStackEvents`` with each operation's request token, ``UpdateStack``) for what moto cannot
  produce: an update stays ``UPDATE_IN_PROGRESS`` for a few looks and then ends as the test scripts
  it (complete, roll back, fail to roll back, or complete while SageMaker silently put the endpoint
  back). What CloudFormation does to the endpoint when an update completes is done to moto's
  SageMaker, so the deployer verifies the endpoint it would really find. Requests are validated
  against botocore's CloudFormation model, and refusals carry CloudFormation's own messages.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from rookery_contracts.monitoring import CONSTRAINTS_FILE, DATA_QUALITY, STATISTICS_FILE, baseline_file

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "rookery-dev-models"
ENDPOINT = "rookery-dev-endpoint"
VARIANT = "primary"
STACK = "Rookery-dev-Serving"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0a1b2c3d-0000-4000-8000-000000000000"
PARAMETER = "ApprovedModelPackageArn"
BASELINE_PARAMETER = "MonitoringBaselineUri"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rookery-dev/serving-model/ModelRole"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/rookery-dev-image:1"

Ending = Literal["deploys", "silently-rolled-back", "rolls-back", "rollback-fails", "fails"]


def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{version}"


def baseline_uri(version: int) -> str:
    """The Baseline step's output prefix of the pipeline run that registered ``version``."""
    return f"s3://rookery-dev-artifacts/rookery-dev-pipeline/execution-{version}/baseline"


def drift_check_baselines(root: str) -> dict[str, Any]:
    """Register's ``DriftCheckBaselines`` for the Baseline step's files under ``root``."""

    def file(name: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": f"{root}/{baseline_file(DATA_QUALITY, name)}"}

    return {"ModelDataQuality": {"Statistics": file(STATISTICS_FILE), "Constraints": file(CONSTRAINTS_FILE)}}


class Registry:
    """The stage's model package group in moto's SageMaker."""

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.versions = 0
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)

    def register(
        self, count: int = 1, status: str = "PendingManualApproval", *, baselines: bool = True
    ) -> list[str]:
        """``count`` versions; ``baselines``: with Register's drift-check baselines (else as registered by
        hand, without)."""
        arns = []
        for _ in range(count):
            self.versions += 1
            extra = {"DriftCheckBaselines": drift_check_baselines(baseline_uri(self.versions))}
            answer = self.sagemaker.create_model_package(
                **(extra if baselines else {}),
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [
                        {"Image": IMAGE, "ModelDataUrl": "s3://rookery-dev-artifacts/model.tar.gz"}
                    ],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )
            arns.append(str(answer["ModelPackageArn"]))
        return arns

    def set(self, version: int, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=package_arn(version), ModelApprovalStatus=status)


class Endpoint:
    """The stack's endpoint in moto's SageMaker: what CloudFormation creates and updates on a swap."""

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker
        self.swaps = 0

    def serve(self, arn: str) -> None:
        self.swaps += 1
        model, config = f"model-{self.swaps}", f"config-{self.swaps}"
        self.sagemaker.create_model(
            ModelName=model, PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn=MODEL_ROLE
        )
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": model,
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.c5.large",
                }
            ],
        )
        # moto has no UpdateEndpoint: the swapped endpoint is recreated on the new config under its name.
        if self.serving() is not None:
            self.sagemaker.delete_endpoint(EndpointName=ENDPOINT)
        self.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)

    def serving(self) -> str | None:
        try:
            described = self.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        except ClientError:
            return None
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        model = self.sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        return str(model["PrimaryContainer"]["ModelPackageName"])


@dataclass
class Update:
    """One accepted UpdateStack: the statuses it shows, one per DescribeStacks, and how it ends."""

    request: Mapping[str, Any]
    ending: Ending
    statuses: deque[str] = field(default_factory=deque)
    applied: bool = False


_FINAL: Mapping[Ending, tuple[str, ...]] = {
    "deploys": ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE"),
    "silently-rolled-back": ("UPDATE_COMPLETE",),
    "rolls-back": ("UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"),
    "rollback-fails": ("UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED"),
    "fails": ("UPDATE_FAILED",),
}
_REASONS: Mapping[Ending, str] = {
    "rolls-back": "The following resource(s) failed to update: [EndpointEndpoint9A1B2C3D]. ",
    "rollback-fails": "The following resource(s) failed to update: [EndpointEndpoint9A1B2C3D]. ",
    "fails": 'Resource handler returned message: "Endpoint update failed"',
}


class ServingStack:
    """A fake CloudFormation client holding the Serving stack (``describe_stacks``, ``update_stack``)."""

    def __init__(
        self, endpoint: Endpoint, *, parameters: Mapping[str, str], in_progress_looks: int = 2
    ) -> None:
        self.endpoint = endpoint
        self.status = "CREATE_COMPLETE"
        self.reason = ""
        self.parameters = dict(parameters)
        self.capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
        self.in_progress_looks = in_progress_looks
        self.endings: deque[Ending] = deque()  # how the next accepted updates end (default: deploys)
        self.accepted: list[Mapping[str, Any]] = []
        self.refused: list[str] = []
        self.current: Update | None = None
        self.previous: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []  # stack-level events, oldest first
        self._operations = (
            boto3.session.Session().client("cloudformation", region_name=REGION).meta.service_model
        )

    # ---------------------------------------------------------------- the API

    def describe_stacks(self, **request: Any) -> dict[str, Any]:
        self._validate("DescribeStacks", request)
        if request.get("StackName") not in (STACK, STACK_ID):
            raise _validation("DescribeStacks", f"Stack with id {request.get('StackName')} does not exist")
        self._advance()
        stack: dict[str, Any] = {
            "StackId": STACK_ID,
            "StackName": STACK,
            "StackStatus": self.status,
            "CreationTime": "2024-05-01T00:00:00Z",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            "Capabilities": list(self.capabilities),
        }
        if self.reason:
            stack["StackStatusReason"] = self.reason
        return {"Stacks": [stack]}

    def get_paginator(self, operation: str) -> Any:
        if operation != "describe_stack_events":
            raise AssertionError(f"the fake paginates describe_stack_events only, not {operation}")
        return SimpleNamespace(paginate=lambda **request: iter([self.describe_stack_events(**request)]))

    def describe_stack_events(self, **request: Any) -> dict[str, Any]:
        request.pop("PaginationConfig", None)
        self._validate("DescribeStackEvents", request)
        if request.get("StackName") not in (STACK, STACK_ID):
            raise _validation("DescribeStackEvents", f"Stack [{request.get('StackName')}] does not exist")
        return {"StackEvents": list(reversed(self.events))}

    def update_stack(self, **request: Any) -> dict[str, Any]:
        self._validate("UpdateStack", request)
        if self.status.endswith("_IN_PROGRESS"):
            message = f"Stack:{STACK_ID} is in {self.status} state and can not be updated."
            self.refused.append(message)
            raise _validation("UpdateStack", message)
        if self.status in ("UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"):
            message = f"Stack:{STACK_ID} is in {self.status} state and can not be updated."
            self.refused.append(message)
            raise _validation("UpdateStack", message)
        new = dict(self.parameters)
        for parameter in request["Parameters"]:
            key = parameter["ParameterKey"]
            if key not in self.parameters:
                raise _validation("UpdateStack", f"Parameters: [{key}] do not exist in the template")
            if parameter.get("UsePreviousValue"):
                if "ParameterValue" in parameter:
                    raise _validation("UpdateStack", f"Invalid input for parameter key {key}")
            else:
                new[key] = parameter["ParameterValue"]
        missing = set(self.parameters) - {p["ParameterKey"] for p in request["Parameters"]}
        if missing:  # CloudFormation would fall back to the template's defaults for these
            raise AssertionError(f"UpdateStack left out {sorted(missing)}: their values would be reset")
        if new == self.parameters:
            self.refused.append("No updates are to be performed.")
            raise _validation("UpdateStack", "No updates are to be performed.")
        ending = self.endings.popleft() if self.endings else "deploys"
        self.current = Update(request, ending, deque(["UPDATE_IN_PROGRESS"] * self.in_progress_looks))
        self.previous, self.parameters = dict(self.parameters), new
        self.status, self.reason = "UPDATE_IN_PROGRESS", "User Initiated"
        self._record()
        self.accepted.append(request)
        return {"StackId": STACK_ID}

    # ---------------------------------------------------------------- the world

    def _advance(self) -> None:
        """One look at an updating stack moves it one status on; the first past the in-progress looks
        applies the update's ending (to the endpoint and the parameters, as CloudFormation would)."""
        update = self.current
        if update is None:
            return
        if not update.statuses and not update.applied:
            if update.ending == "deploys":
                self.endpoint.serve(self.parameters[PARAMETER])
            if update.ending in ("rolls-back", "rollback-fails"):
                self.parameters = self.previous
            update.statuses.extend(_FINAL[update.ending])
            update.applied = True
            self.reason = _REASONS.get(update.ending, "")
        status = update.statuses.popleft()
        if status != self.status:
            self.status = status
            self._record()
        if update.applied and not update.statuses:
            self.current = None

    def _record(self) -> None:
        """A stack-level event of the current update, stamped with its request token."""
        assert self.current is not None
        self.events.append(
            {
                "StackId": STACK_ID,
                "StackName": STACK,
                "EventId": f"event-{len(self.events)}",
                "LogicalResourceId": STACK,
                "PhysicalResourceId": STACK_ID,
                "ResourceType": "AWS::CloudFormation::Stack",
                "ResourceStatus": self.status,
                "ResourceStatusReason": self.reason,
                "ClientRequestToken": self.current.request["ClientRequestToken"],
                "Timestamp": "2024-05-01T12:00:00Z",
            }
        )

    def finish(self) -> None:
        """Let the current update run to its end (another execution's deployment, for instance)."""
        while self.current is not None:
            self._advance()

    def _validate(self, operation: str, request: Mapping[str, Any]) -> None:
        validate_parameters(dict(request), self._operations.operation_model(operation).input_shape)


def _validation(operation: str, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Type": "Sender", "Code": "ValidationError", "Message": message}}, operation
    )


def published(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every deployment event EventBridge delivered to the test's queue, oldest first."""
    events: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = answer.get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
