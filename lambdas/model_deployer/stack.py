"""The Serving stack through CloudFormation's API: read its state and model parameter, update it, and
follow one update by its request token.

The update reuses the previous template and keeps the previous value of every parameter but the ones
it sets (the model's and its monitoring baseline's), passes the stack's CloudFormation service role
and the capabilities the stack was last deployed with (the template, and so what it needs, is
unchanged). CloudFormation's refusals are classified here: "No updates are to be performed" means
the stack already holds the values, an
"... _IN_PROGRESS state and can not be updated" error means another update holds the stack.

The stack's status is whatever its latest operation left: once an update ends, another execution may
start the next one before this one looks again. CloudFormation stamps every event of an operation,
its rollback included, with the operation's ``ClientRequestToken``, so ``read_operation`` follows
one update by its token and never mistakes a later update for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import ClientError

_NO_UPDATES: Final = "No updates are to be performed"
_IN_PROGRESS: Final = re.compile(r"_IN_PROGRESS state and can ?not be updated")
_MISSING: Final = re.compile(r"Stack with id .+ does not exist")
STACK_RESOURCE_TYPE: Final = "AWS::CloudFormation::Stack"
# Stack events come newest first, 100 a page; an update's events are among the newest few hundred.
MAX_EVENT_PAGES: Final = 10


@dataclass(frozen=True)
class StackReading:
    """One ``DescribeStacks`` answer for the Serving stack."""

    stack_id: str
    status: str
    reason: str  # CloudFormation's status reason ("" when it gives none)
    parameters: Mapping[str, str]  # every parameter's current value, by key
    capabilities: tuple[str, ...]

    def value(self, parameter: str) -> str | None:
        """A parameter's value; None when it is empty (no approved version yet) or absent."""
        return self.parameters.get(parameter) or None


def read_stack(client: Any, stack: str) -> StackReading | None:
    """The stack's state, or None when it does not exist."""
    try:
        [described] = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if _is_validation(error) and _MISSING.search(_message(error)):
            return None
        raise
    return StackReading(
        stack_id=str(described["StackId"]),
        status=str(described["StackStatus"]),
        reason=str(described.get("StackStatusReason") or ""),
        parameters={
            str(p["ParameterKey"]): str(p.get("ParameterValue") or "")
            for p in described.get("Parameters", [])
        },
        capabilities=tuple(described.get("Capabilities") or ()),
    )


class StackParameterError(ValueError):
    """The stack lacks a parameter the update sets: its deployed template is not the Serving stack's."""


class Attempt(StrEnum):
    STARTED = "started"  # CloudFormation accepted the update
    UNCHANGED = "unchanged"  # the stack already holds this value (another execution put it there)
    BUSY = "busy"  # another update holds the stack
    REFUSED = "refused"  # CloudFormation refused the request; the message says why


@dataclass(frozen=True)
class UpdateAttempt:
    attempt: Attempt
    message: str = ""


def update_parameters(reading: StackReading, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """``UpdateStack``'s parameters: each of ``values`` set, every other one kept as it is."""
    missing = sorted(set(values) - set(reading.parameters))
    if missing:
        raise StackParameterError(
            f"the stack has no parameter {', '.join(map(repr, missing))} (it has "
            f"{sorted(reading.parameters)}); deploy the Serving stack's template with it first"
        )
    return [
        {"ParameterKey": key, "ParameterValue": values[key]}
        if key in values
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in reading.parameters
    ]


def start_update(
    client: Any,
    reading: StackReading,
    *,
    values: Mapping[str, str],
    role_arn: str,
    token: str,
) -> UpdateAttempt:
    """Ask CloudFormation to set the stack's parameters to ``values`` through ``role_arn``, in one update."""
    request: dict[str, Any] = {
        "StackName": reading.stack_id,
        "UsePreviousTemplate": True,
        "Parameters": update_parameters(reading, values),
        "RoleARN": role_arn,
        "ClientRequestToken": token,
    }
    if reading.capabilities:
        request["Capabilities"] = list(reading.capabilities)
    try:
        client.update_stack(**request)
    except ClientError as error:
        if not _is_validation(error):
            raise
        message = _message(error)
        if _NO_UPDATES in message:
            return UpdateAttempt(Attempt.UNCHANGED, message)
        if _IN_PROGRESS.search(message):
            return UpdateAttempt(Attempt.BUSY, message)
        return UpdateAttempt(Attempt.REFUSED, message)
    return UpdateAttempt(Attempt.STARTED)


@dataclass(frozen=True)
class Operation:
    """The latest stack-level status of one update (its token's newest event); None: no event yet."""

    status: str | None
    reason: str = ""


def read_operation(client: Any, stack_id: str, token: str) -> Operation:
    """How the update started with ``token`` stands now, from the stack's own events."""
    pages = client.get_paginator("describe_stack_events").paginate(
        StackName=stack_id, PaginationConfig={"MaxItems": MAX_EVENT_PAGES * 100}
    )
    for page in pages:
        for event in page.get("StackEvents", []):
            if (
                event.get("ClientRequestToken") == token
                and event.get("ResourceType") == STACK_RESOURCE_TYPE
                and event.get("PhysicalResourceId") == stack_id
            ):
                return Operation(str(event["ResourceStatus"]), str(event.get("ResourceStatusReason") or ""))
    return Operation(None)


def _is_validation(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ValidationError"


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))
