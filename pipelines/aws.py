"""The pipeline's operations on SageMaker: upsert a definition, read the deployed one, start an
execution, read its status and wait for it to end.

Each operation takes a ``Connection`` (AWS profile, region, endpoint URL override) and returns typed
data; nothing prints. Every AWS or credential problem raises ``AwsError`` with one line naming the
problem and the fix, never a botocore traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from pipelines.definition import iter_steps
from pipelines.findings import Finding
from pipelines.parameters import parse_overrides, pipeline_parameters
from pipelines.validate import validate_definition

TERMINAL: Final = ("Succeeded", "Failed", "Stopped")
STEPS_UNSUPPORTED: Final = "the endpoint does not implement ListPipelineExecutionSteps"
# Error codes an endpoint returns for an operation it does not implement (emulators, moto server).
_UNSUPPORTED: Final = (
    "UnknownOperationException",
    "InvalidAction",
    "NotImplemented",
    "NotImplementedException",
)


class OperationError(Exception):
    """A pipeline operation cannot be done as asked; the message names the problem and the fix."""


class AwsError(OperationError):
    """An AWS call failed or could not be made (credentials, region, endpoint, a service error)."""


class DefinitionRefusedError(OperationError):
    """The definition has blocking findings (``findings``), so it is not upserted."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__(
            f"the definition has {len(self.findings)} finding(s); see `rookery pipeline validate`"
        )


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into ``AwsError`` naming the problem and the fix."""
    try:
        yield
    except NoCredentialsError:
        raise AwsError(
            "no AWS credentials found: pass --profile, set AWS_PROFILE, or sign in (aws sso login)"
        ) from None
    except PartialCredentialsError as exc:
        raise AwsError(f"incomplete AWS credentials ({exc}); check the profile or environment") from None
    except ProfileNotFound as exc:
        raise AwsError(f"{exc}; list profiles with `aws configure list-profiles`") from None
    except NoRegionError:
        raise AwsError("no AWS region: pass --region or --stage, or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        where = exc.kwargs.get("endpoint_url", "the SageMaker endpoint")
        raise AwsError(f"cannot reach {where}: check --endpoint-url and the network") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(
            f"{exc.operation_name}: {error.get('Code', 'Error')}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise AwsError(str(exc)) from None


@dataclass(frozen=True)
class Connection:
    """Where the SageMaker calls go; ``None`` leaves the choice to boto3 (environment, config files)."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    def sagemaker(self) -> Any:
        """A SageMaker client in this profile, region and endpoint (the one AWS entry point)."""
        with aws_errors():
            session = boto3.Session(profile_name=self.profile, region_name=self.region)
            return session.client("sagemaker", endpoint_url=self.endpoint_url)


# -- upsert / deployed definition / start ---------------------------------------------------------------
@dataclass(frozen=True)
class Upserted:
    arn: str
    created: bool  # False: an existing pipeline was updated


def role_of(definition: Mapping[str, Any]) -> str | None:
    """The execution role every job of the definition uses, or None when they use several (or none)."""
    roles = set()
    for step in iter_steps(definition.get("Steps", [])):
        args = step.get("Arguments", {})
        for key in ("RoleArn", "ExecutionRoleArn"):
            if isinstance(args.get(key), str):
                roles.add(args[key])
        role = args.get("TrainingJobDefinition", {}).get("RoleArn") if isinstance(args, Mapping) else None
        if isinstance(role, str):
            roles.add(role)
    return roles.pop() if len(roles) == 1 else None


def _missing_pipeline(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") == "ResourceNotFound" or (
        error.get("Code") == "ValidationException" and ("not find" in message or "does not exist" in message)
    )


def upsert_pipeline(
    connection: Connection, name: str, definition: Mapping[str, Any], *, role_arn: str | None = None
) -> Upserted:
    """Create pipeline ``name`` with ``definition``, or update it to it.

    Raises ``DefinitionRefusedError`` when the definition has blocking findings (nothing is called),
    ``OperationError`` when no role is given and the jobs do not share one.
    """
    blocking = [f for f in validate_definition(definition) if f.blocking]
    if blocking:
        raise DefinitionRefusedError(blocking)
    role = role_arn or role_of(definition)
    if role is None:
        raise OperationError("the definition's jobs do not share one role; pass --role-arn")
    body = json.dumps(definition)
    with aws_errors():
        client = connection.sagemaker()
        try:
            client.describe_pipeline(PipelineName=name)
            exists = True
        except ClientError as exc:
            if not _missing_pipeline(exc):
                raise
            exists = False
        if exists:
            updated = client.update_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=role)
            return Upserted(str(updated["PipelineArn"]), created=False)
        # Same name and definition -> same token: a retried create is not a second pipeline.
        token = hashlib.sha256(f"{name}\n{body}".encode()).hexdigest()[:64]
        created = client.create_pipeline(
            PipelineName=name, PipelineDefinition=body, RoleArn=role, ClientRequestToken=token
        )
        return Upserted(str(created["PipelineArn"]), created=True)


def _deployed(client: Any, name: str) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(client.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    return definition


def deployed_definition(connection: Connection, name: str) -> dict[str, Any]:
    """The definition pipeline ``name`` runs now (its parameters included)."""
    with aws_errors():
        return _deployed(connection.sagemaker(), name)


def start_execution(connection: Connection, name: str, overrides: Sequence[str] = ()) -> str:
    """Start an execution of pipeline ``name``; returns its ARN.

    ``overrides`` (``NAME=VALUE``) are checked against the deployed definition's parameters first
    (``ParameterError`` naming the parameter and the fix; nothing starts).
    """
    with aws_errors():
        client = connection.sagemaker()
        parameters = pipeline_parameters(parse_overrides(_deployed(client, name), overrides))
        started = client.start_pipeline_execution(
            PipelineName=name, PipelineParameters=parameters, ClientRequestToken=uuid.uuid4().hex
        )
        return str(started["PipelineExecutionArn"])


def latest_execution(connection: Connection, name: str) -> str:
    """The ARN of pipeline ``name``'s newest execution; ``OperationError`` when it has none."""
    with aws_errors():
        summaries = connection.sagemaker().list_pipeline_executions(
            PipelineName=name, SortBy="CreationTime", SortOrder="Descending"
        )
    executions = summaries.get("PipelineExecutionSummaries", [])
    if not executions:
        raise OperationError(f"pipeline {name} has no executions; start one with `rookery pipeline start`")
    return str(executions[0]["PipelineExecutionArn"])


# -- status / wait --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepState:
    name: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class ExecutionState:
    arn: str
    status: str
    reason: str
    steps: tuple[StepState, ...] | None  # None: the endpoint cannot list steps (``note`` says so)
    note: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def failed_step(self) -> StepState | None:
        """The first step (in start order) that failed, if the endpoint lists steps."""
        return next((s for s in self.steps or () if s.status == "Failed"), None)


@dataclass(frozen=True)
class Change:
    """A status not seen before: of step ``step``, or of the execution itself when ``step`` is None."""

    step: str | None
    status: str
    reason: str = ""


def _sort_key(step: Mapping[str, Any]) -> dt.datetime:
    started = step.get("StartTime")
    return started if isinstance(started, dt.datetime) else dt.datetime.max.replace(tzinfo=dt.UTC)


def _unsupported(exc: ClientError) -> bool:
    """The endpoint does not implement the operation: an error code saying so, or an HTTP 500 that
    carries no AWS error at all (botocore then uses the status as the code). moto's server answers
    an operation it lacks that way; SageMaker's own 500s name an error (InternalFailure)."""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _UNSUPPORTED or (status == 500 and code == "500")


def _state(client: Any, arn: str) -> ExecutionState:
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    status, reason = described["PipelineExecutionStatus"], described.get("FailureReason") or ""
    raw: list[Mapping[str, Any]] = []
    try:
        kwargs: dict[str, str] = {"PipelineExecutionArn": arn}
        while True:
            page = client.list_pipeline_execution_steps(**kwargs)
            raw.extend(page.get("PipelineExecutionSteps", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except NotImplementedError:  # moto raises this for operations it does not implement
        return ExecutionState(arn, status, reason, None, STEPS_UNSUPPORTED)
    except ClientError as exc:
        if not _unsupported(exc):
            raise
        return ExecutionState(arn, status, reason, None, STEPS_UNSUPPORTED)
    steps = tuple(
        StepState(s.get("StepName", "?"), s.get("StepStatus", "?"), s.get("FailureReason") or "")
        for s in sorted(raw, key=_sort_key)
    )
    return ExecutionState(arn, status, reason, steps)


def execution_state(connection: Connection, arn: str) -> ExecutionState:
    """The execution's status and, where the endpoint implements it, each step's status."""
    with aws_errors():
        return _state(connection.sagemaker(), arn)


def changes(before: ExecutionState | None, after: ExecutionState) -> list[Change]:
    """What ``after`` shows that ``before`` did not: each step's new status, then the execution's."""
    known = {s.name: s.status for s in (before.steps or ())} if before else {}
    found = [Change(s.name, s.status, s.reason) for s in after.steps or () if known.get(s.name) != s.status]
    if before is None or before.status != after.status:
        found.append(Change(None, after.status))
    return found


def wait_for_execution(
    connection: Connection,
    arn: str,
    *,
    poll_seconds: float,
    timeout_seconds: float | None,
    on_poll: Callable[[ExecutionState | None, ExecutionState], None] = lambda before, after: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExecutionState:
    """Poll until the execution ends or ``timeout_seconds`` pass; returns the last state seen.

    ``on_poll(before, after)`` gets every state with the one before it (None the first time);
    ``changes(before, after)`` says what is new.
    """
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    state: ExecutionState | None = None
    with aws_errors():
        client = connection.sagemaker()
        while True:
            current = _state(client, arn)
            on_poll(state, current)
            state = current
            if state.finished or (deadline is not None and clock() >= deadline):
                return state
            sleep(poll_seconds)
