"""The deployer's state logic, pure: what a task read goes in, the next state comes out.

Every task of the state machine passes one JSON state along (``rookery_contracts.deployer``); these
functions add what the task learned, count the loops against the bounds in ``state["limits"]``, keep
a timeline for the published event, and set ``next``. The decision and what counts as success are
``rookery_contracts.deployment``'s, shared with the local endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

from model_deployer.endpoint import LiveEndpoint
from model_deployer.registry import Baseline
from model_deployer.stack import Attempt, Operation, StackReading, UpdateAttempt
from rookery_contracts.deployer import (
    ERROR_KEY,
    EXECUTION_KEY,
    LIMITS_KEY,
    NEXT_KEY,
    STARTED_KEY,
    Limit,
    Next,
    Task,
)
from rookery_contracts.deployment import (
    Action,
    Decision,
    DeploymentError,
    Outcome,
    PackageVersion,
    StackState,
    Status,
    UpdateResult,
    decide,
    event_detail,
    same_arn,
    stack_state,
    update_result,
    verify,
    version_of,
)

State = dict[str, Any]

COUNTERS_KEY: Final = "counters"  # loop counts: busy (checks of a busy stack), polls, deployments
DECISION_KEY: Final = "decision"  # the last decision, as decision_record() writes it
STACK_KEY: Final = "stack"  # the status the last finished update left the stack in, and why
OUTCOME_KEY: Final = "outcome"  # what the next publish reports
TIMELINE_KEY: Final = "timeline"  # the current deployment's steps, published with its outcome
DEPLOYMENT_STARTED_KEY: Final = "deployment_started"
TOKEN_KEY: Final = "token"  # the ClientRequestToken of the update being followed
# The monitoring baseline the current update sets with the model: {"baseline": <uri> | None, "reason": ...}.
MONITORING_KEY: Final = "monitoring"

_TOKEN_CHARACTERS: Final = re.compile(r"[^a-zA-Z0-9-]")
_TOKEN_MAX: Final = 128  # UpdateStack's ClientRequestToken: [a-zA-Z][-a-zA-Z0-9]*, at most 128


# ---------------------------------------------------------------- records in the state


def decision_record(decision: Decision) -> dict[str, Any]:
    return {
        "action": str(decision.action),
        "reason": decision.reason,
        "target": asdict(decision.target) if decision.target else None,
        "live": asdict(decision.live) if decision.live else None,
    }


def decision_of(state: Mapping[str, Any]) -> Decision:
    """The state's last decision (a placeholder when the execution stopped before deciding)."""
    record = state.get(DECISION_KEY)
    if not record:
        return Decision(Action.NONE, None, None, "the deployer stopped before it could decide")
    return Decision(
        Action(record["action"]),
        PackageVersion(**record["target"]) if record.get("target") else None,
        PackageVersion(**record["live"]) if record.get("live") else None,
        str(record["reason"]),
    )


def outcome_of(state: Mapping[str, Any]) -> Outcome:
    """What to publish: the recorded outcome, else the error the state machine caught."""
    record = state.get(OUTCOME_KEY)
    if record:
        return Outcome(Status(record["status"]), str(record["reason"]))
    error = state.get(ERROR_KEY) or {}
    return Outcome(Status.FAILED, f"the deployer stopped on an error: {_error_text(error)}")


def request_token(state: Mapping[str, Any]) -> str:
    """``UpdateStack``'s idempotency token: one per execution and deployment within it."""
    number = _count(state, "deployments") + 1
    execution = _TOKEN_CHARACTERS.sub("-", str(state.get(EXECUTION_KEY) or "manual"))
    suffix = f"-{number}"
    return f"rookery-{execution}"[: _TOKEN_MAX - len(suffix)] + suffix


# ---------------------------------------------------------------- after each task


def unavailable(
    state: State, *, now: str, task: Task, stack_name: str, stack: StackReading | None
) -> State | None:
    """The next state when the stack cannot take an update now (missing, busy or broken), else None."""
    if stack is None:
        return _fail(
            state,
            now,
            task,
            f"the Serving stack {stack_name} does not exist: deploy it (cdk deploy) before approving "
            "versions",
        )
    kind = stack_state(stack.status)
    if kind is StackState.BUSY:
        return _busy(state, now, task, f"the Serving stack is {stack.status}")
    if kind is StackState.BROKEN:
        return _fail(
            state, now, task, f"the Serving stack is {stack.status}{_because(stack.reason)}{_REPAIR}"
        )
    return None


def decided(
    state: State, *, now: str, stack: StackReading, versions: Sequence[PackageVersion], parameter: str
) -> State:
    """After re-reading the registry and the (ready) stack: deploy, nothing to do, or a failure to publish."""
    decision = decide(versions, stack.value(parameter))
    state = _with(state, {DECISION_KEY: decision_record(decision)})
    state = _note(state, now, Task.DECIDE, decision.reason)
    deployments = _count(state, "deployments")
    if decision.action is Action.NONE:
        if deployments:
            return _with(state, {NEXT_KEY: Next.DONE})  # converged after a published deployment
        return _outcome(state, Status.NO_CHANGE, decision.reason)
    if decision.action is Action.HOLD:
        return _outcome(state, Status.FAILED, f"{decision.reason} (a person must act)")
    if deployments >= _limit(state, Limit.DEPLOYMENTS):
        return _outcome(
            state,
            Status.FAILED,
            f"{deployments} deployments in one execution and the endpoint still needs another "
            f"({decision.reason}); a person must look at why the stack does not keep its model parameter",
        )
    return _with(state, {NEXT_KEY: Next.UPDATE})


def updated(state: State, *, now: str, attempt: UpdateAttempt, baseline: Baseline) -> State:
    """After ``UpdateStack`` (the model and ``baseline``, the target's monitoring baseline, in one
    update): poll the started update, decide again, wait for the stack, or fail."""
    wanted = _target_text(state)
    if attempt.attempt is Attempt.STARTED:
        counters = {**_counters(state), "deployments": _count(state, "deployments") + 1, "polls": 0}
        started = {COUNTERS_KEY: counters, DEPLOYMENT_STARTED_KEY: now, OUTCOME_KEY: None}
        monitoring = {"baseline": baseline.uri, "reason": baseline.reason}
        state = _with(state, {**started, TOKEN_KEY: request_token(state), MONITORING_KEY: monitoring})
        note = f"stack update to {wanted} started; {_monitoring_text(state)}"
        return _with(_note(state, now, Task.UPDATE, note), {NEXT_KEY: Next.POLL})
    if attempt.attempt is Attempt.UNCHANGED:
        note = f"the stack already holds {wanted} (another execution updated it): deciding again"
        return _with(_note(state, now, Task.UPDATE, note), {NEXT_KEY: Next.DECIDE})
    if attempt.attempt is Attempt.BUSY:
        return _busy(state, now, Task.UPDATE, "another update holds the Serving stack")
    return _fail(state, now, Task.UPDATE, f"CloudFormation refused the update to {wanted}: {attempt.message}")


def polled(
    state: State, *, now: str, stack_name: str, stack: StackReading | None, operation: Operation
) -> State:
    """After one look at this execution's update (``operation``, followed by its request token): keep
    polling (bounded) or verify what it finished with."""
    if stack is None:
        return _fail(state, now, Task.POLL, f"the Serving stack {stack_name} disappeared during the update")
    polls = _count(state, "polls") + 1
    state = _with(state, {COUNTERS_KEY: {**_counters(state), "polls": polls}})
    # No event yet: CloudFormation accepted the update and has not recorded its start.
    status = operation.status or "UPDATE_IN_PROGRESS"
    if stack_state(status) is StackState.BUSY:
        state = _note(state, now, Task.POLL, f"stack {status}")
        if polls >= _limit(state, Limit.POLLS):
            waited = polls * _limit(state, Limit.WAIT_SECONDS)
            return _fail(
                state,
                now,
                Task.POLL,
                f"the update to {_target_text(state)} is still {status} after {waited} s, longer than "
                "the deployment's time limit plus provisioning; a person must look at the stack's events",
            )
        return _with(state, {NEXT_KEY: Next.POLL})
    state = _note(state, now, Task.POLL, f"stack {status}{_because(operation.reason)}")
    return _with(state, {STACK_KEY: {"status": status, "reason": operation.reason}, NEXT_KEY: Next.VERIFY})


def verified(state: State, *, now: str, live: LiveEndpoint, stack_value: str | None) -> State:
    """After reading the live endpoint and the stack's model parameter (``stack_value``): success only
    when the endpoint is InService on the requested package.

    The one exception: this execution's update completed, and a later update of the stack (another
    execution's deployment, which can start only after this one ended) has already replaced the
    requested package on the endpoint and in the parameter. The endpoint can no longer show this
    deployment, so the outcome says what CloudFormation reported and what replaced it.
    """
    decision = decision_of(state)
    if decision.target is None:
        raise DeploymentError("verify needs the decision's target; the state has none")
    final = state[STACK_KEY]
    result = update_result(final["status"])
    try:
        outcome = verify(
            decision.target.arn,
            update=result,
            endpoint_status=live.status,
            serving_arn=live.model_package,
            update_reason=final["reason"],
        )
    except DeploymentError as error:  # the endpoint serves something that is not a package version
        outcome = Outcome(Status.FAILED, f"the endpoint does not serve a model package version: {error}")
    superseded = (
        result is UpdateResult.UPDATED
        and stack_value is not None
        and not same_arn(stack_value, decision.target.arn)
        and same_arn(stack_value, live.model_package)
    )
    if outcome.status is Status.FAILED and superseded:
        outcome = Outcome(
            Status.SUCCEEDED,
            f"the update to version {decision.target.version} completed; a later deployment has since put "
            f"version {version_of(str(stack_value))} on the endpoint",
        )
    reason = outcome.reason
    if live.detail:
        reason = f"{reason} ({live.detail})"
    if outcome.status is Status.SUCCEEDED and not (state.get(MONITORING_KEY) or {}).get("baseline"):
        reason = f"{reason}; {_monitoring_text(state)}"
    if outcome.status is Status.FAILED and stack_state(final["status"]) is StackState.BROKEN:
        reason = f"{reason}; the stack is {final['status']}{_REPAIR}"
    seen = live.model_package or "no model package"
    state = _note(state, now, Task.VERIFY, f"endpoint {live.status or 'missing'} on {seen}")
    return _outcome(state, outcome.status, reason)


def failed(state: State, *, now: str, task: Task, reason: str) -> State:
    """A failure a task found itself (not an AWS error): publish it."""
    return _fail(state, now, task, reason)


def publication(state: Mapping[str, Any], *, now: str, endpoint: str) -> dict[str, Any]:
    """The deployment event's detail for the state's outcome (``deployment.event_detail``'s shape)."""
    started = state.get(DEPLOYMENT_STARTED_KEY) or state.get(STARTED_KEY) or now
    return event_detail(
        endpoint,
        decision_of(state),
        outcome_of(state),
        started=str(started),
        finished=now,
        timeline=state.get(TIMELINE_KEY) or (),
    )


def published(state: State) -> State:
    """After publishing: a failure fails the execution, a success decides once more, no change ends it."""
    outcome = outcome_of(state)
    if outcome.status is Status.FAILED:
        # Recorded even when it came from a caught error: the failed execution's cause is its reason.
        return _outcome_and(state, outcome, Next.FAIL)
    if outcome.status is Status.SUCCEEDED:
        # The next deployment (if the registry moved meanwhile) gets a timeline of its own.
        fresh: dict[str, Any] = {
            OUTCOME_KEY: None,
            TIMELINE_KEY: [],
            DEPLOYMENT_STARTED_KEY: None,
            MONITORING_KEY: None,
            NEXT_KEY: Next.DECIDE,
        }
        return _with(state, fresh)
    return _with(state, {NEXT_KEY: Next.DONE})


# ---------------------------------------------------------------- helpers

_REPAIR: Final = (
    ": CloudFormation cannot update it until a person repairs it (continue or cancel the rollback)"
)


def _with(state: Mapping[str, Any], changes: Mapping[str, Any]) -> State:
    return {**state, **changes}


def _counters(state: Mapping[str, Any]) -> dict[str, int]:
    return dict(state.get(COUNTERS_KEY) or {})


def _count(state: Mapping[str, Any], name: str) -> int:
    return int(_counters(state).get(name, 0))


def _limit(state: Mapping[str, Any], limit: Limit) -> int:
    return int(state[LIMITS_KEY][limit])


def _note(state: State, now: str, task: Task, detail: str) -> State:
    """Add a timeline entry, unless it repeats the last one (a busy stack looked at again)."""
    timeline = list(state.get(TIMELINE_KEY) or [])
    if timeline and (timeline[-1]["step"], timeline[-1]["detail"]) == (str(task), detail):
        return state
    return _with(state, {TIMELINE_KEY: [*timeline, {"time": now, "step": str(task), "detail": detail}]})


def _outcome(state: State, status: Status, reason: str) -> State:
    return _outcome_and(state, Outcome(status, reason), Next.PUBLISH)


def _outcome_and(state: State, outcome: Outcome, next_task: Next) -> State:
    return _with(
        state, {OUTCOME_KEY: {"status": str(outcome.status), "reason": outcome.reason}, NEXT_KEY: next_task}
    )


def _fail(state: State, now: str, task: Task, reason: str) -> State:
    return _outcome(_note(state, now, task, reason), Status.FAILED, reason)


def _busy(state: State, now: str, task: Task, what: str) -> State:
    checks = _count(state, "busy") + 1
    state = _with(_note(state, now, task, what), {COUNTERS_KEY: {**_counters(state), "busy": checks}})
    if checks >= _limit(state, Limit.BUSY_CHECKS):
        waited = checks * _limit(state, Limit.WAIT_SECONDS)
        return _fail(
            state,
            now,
            task,
            f"{what} still after {waited} s, longer than a deployment may take; a person must look at the "
            "stack's events",
        )
    return _with(state, {NEXT_KEY: Next.WAIT})


def _target_text(state: Mapping[str, Any]) -> str:
    target = decision_of(state).target
    return f"version {target.version}" if target else "the decided version"


def _monitoring_text(state: Mapping[str, Any]) -> str:
    """What the current update does to monitoring: the baseline it sets, or why monitoring is off."""
    monitoring = state.get(MONITORING_KEY) or {}
    if monitoring.get("baseline"):
        return f"monitoring baseline {monitoring['baseline']}"
    return f"monitoring off: {_target_text(state)} has no monitoring baseline, {monitoring.get('reason')}"


def _because(reason: str) -> str:
    return f" ({reason})" if reason else ""


def _error_text(error: Mapping[str, Any]) -> str:
    """Step Functions' caught error: ``Error`` plus the Lambda's own message from the ``Cause`` JSON."""
    name = str(error.get("Error") or "an unknown error")
    cause = error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return f"{name}: {message}" if message else name
