"""Which model version an endpoint should serve, and whether a deployment really reached it.

Pure and stdlib-only, shipped inside the deployer Lambda and imported by the local endpoint, so the
AWS deployer and the local one take the same decisions:

- :func:`decide`: the highest **Approved** version of the group is the target (sorted here, by
  version number, descending: ``ListModelPackages`` sorts ascending by default); nothing happens when
  the endpoint already serves it; a live version that is no longer approved is rolled back to the
  highest approved one; with nothing approved to fall back to, the endpoint is held on what it
  serves and the outcome says a person must act. Decisions depend on the registry and the live
  endpoint only, never on the event that woke the deployer, so duplicate, stale and out-of-order
  events converge on the same state.
- :func:`stack_state`: whether the Serving stack can take an update now (an update in progress is a
  deployment in progress: the stack is the lock, one deployment at a time per endpoint).
- :func:`verify`: a deployment succeeded only when the update completed **and** the live endpoint is
  InService on the requested model package. A blue/green update that SageMaker rolled back leaves
  the endpoint InService on the old configuration: that is a failed deployment, never a success.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

APPROVED: Final = "Approved"
REJECTED: Final = "Rejected"
PENDING: Final = "PendingManualApproval"

# A versioned model package: ``arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>``.
_VERSION: Final = re.compile(r":model-package/[^/]+/(\d+)$")


class DeploymentError(ValueError):
    """An input the decision cannot use (a malformed ARN or summary); the message names it."""


@dataclass(frozen=True)
class PackageVersion:
    """One version of a model package group as the registry lists it."""

    arn: str
    version: int
    status: str

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> PackageVersion:
        """From a ``ListModelPackages`` summary (or ``DescribeModelPackage`` output)."""
        arn = summary.get("ModelPackageArn")
        if not isinstance(arn, str) or not arn:
            raise DeploymentError(f"model package summary without ModelPackageArn: {dict(summary)!r}")
        version = summary.get("ModelPackageVersion")
        return cls(
            arn=arn,
            version=int(version) if isinstance(version, int) else version_of(arn),
            status=str(summary.get("ModelApprovalStatus") or PENDING),
        )


def same_arn(a: str | None, b: str | None) -> bool:
    """Whether two ARNs name the same resource: SageMaker lowercases model package ARNs, so a
    parameter typed with the group's original capitals still names the same version."""
    return a is not None and b is not None and a.lower() == b.lower()


def version_of(arn: str) -> int:
    """The version number at the end of a versioned model package ARN (``.../group/7`` -> 7)."""
    match = _VERSION.search(arn)
    if match is None:
        raise DeploymentError(
            f"{arn!r} is not a versioned model package ARN (arn:...:model-package/<group>/<version>)"
        )
    return int(match.group(1))


class Action(StrEnum):
    NONE = "none"  # the endpoint already serves the target (or nothing is approved yet)
    DEPLOY = "deploy"  # a newer approved version replaces the live one (or the first one goes live)
    ROLLBACK = "rollback"  # the live version lost its approval: back to the highest approved one
    HOLD = "hold"  # the live version lost its approval and nothing else is approved


@dataclass(frozen=True)
class Decision:
    action: Action
    target: PackageVersion | None
    live: PackageVersion | None
    reason: str

    @property
    def changes_endpoint(self) -> bool:
        return self.action in (Action.DEPLOY, Action.ROLLBACK)


def highest_approved(versions: Iterable[PackageVersion]) -> PackageVersion | None:
    approved = sorted((v for v in versions if v.status == APPROVED), key=lambda v: v.version, reverse=True)
    return approved[0] if approved else None


def decide(versions: Iterable[PackageVersion], live_arn: str | None) -> Decision:
    """What the endpoint should serve, given every version of the group and the live package ARN."""
    known = list(versions)
    live = next((v for v in known if same_arn(v.arn, live_arn)), None) if live_arn else None
    if live_arn and live is None:
        live = PackageVersion(live_arn, version_of(live_arn), "Unknown")
    target = highest_approved(known)
    if target is None:
        if live is None:
            return Decision(Action.NONE, None, None, "no version is approved yet: nothing to deploy")
        return Decision(
            Action.HOLD,
            None,
            live,
            f"live version {live.version} is {live.status} and no other version is approved: the endpoint "
            "keeps serving it; approve a version to replace it",
        )
    if live is not None and same_arn(target.arn, live.arn):
        return Decision(
            Action.NONE,
            target,
            live,
            f"the endpoint already serves version {target.version}, the highest approved",
        )
    if live is not None and live.status != APPROVED and target.version < live.version:
        return Decision(
            Action.ROLLBACK,
            target,
            live,
            f"live version {live.version} is {live.status}: rolling back to version {target.version}, "
            "the highest approved",
        )
    serving = f"the endpoint serves version {live.version}" if live else "no endpoint serves a model yet"
    return Decision(
        Action.DEPLOY, target, live, f"version {target.version} is the highest approved; {serving}"
    )


class StackState(StrEnum):
    READY = "ready"  # an update may start
    BUSY = "busy"  # an update (a deployment) is in progress: wait, then decide again
    BROKEN = "broken"  # the stack cannot be updated until a person repairs it


_READY: Final = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)


def stack_state(status: str) -> StackState:
    if status.endswith("_IN_PROGRESS"):
        return StackState.BUSY
    return StackState.READY if status in _READY else StackState.BROKEN


class UpdateResult(StrEnum):
    UPDATED = "updated"
    ROLLED_BACK = "rolled back"
    FAILED = "failed"


def update_result(final_status: str) -> UpdateResult:
    """A finished stack update by its final status."""
    if final_status == "UPDATE_COMPLETE":
        return UpdateResult.UPDATED
    if final_status == "UPDATE_ROLLBACK_COMPLETE":
        return UpdateResult.ROLLED_BACK
    return UpdateResult.FAILED


class Status(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    NO_CHANGE = "NoChange"


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str


def verify(
    requested_arn: str,
    *,
    update: UpdateResult,
    endpoint_status: str | None,
    serving_arn: str | None,
    update_reason: str = "",
) -> Outcome:
    """Success only when the update completed and the live endpoint serves ``requested_arn`` InService."""
    observed = f"version {version_of(serving_arn)}" if serving_arn else "no model"
    wanted = f"version {version_of(requested_arn)}"
    if update is UpdateResult.ROLLED_BACK:
        detail = f" ({update_reason})" if update_reason else ""
        return Outcome(
            Status.FAILED, f"the update to {wanted} was rolled back{detail}; the endpoint serves {observed}"
        )
    if update is UpdateResult.FAILED:
        detail = f": {update_reason}" if update_reason else ""
        return Outcome(
            Status.FAILED, f"the update to {wanted} failed{detail}; the endpoint serves {observed}"
        )
    if endpoint_status != "InService":
        return Outcome(Status.FAILED, f"the endpoint is {endpoint_status or 'missing'}, not InService")
    if not same_arn(serving_arn, requested_arn):
        return Outcome(
            Status.FAILED,
            f"the update completed but the endpoint serves {observed}, not {wanted}: the blue/green "
            "deployment was rolled back (a rollback alarm fired during the bake)",
        )
    return Outcome(Status.SUCCEEDED, f"the endpoint serves {wanted}, InService")


def event_detail(
    endpoint: str,
    decision: Decision,
    outcome: Outcome,
    *,
    started: str,
    finished: str,
    timeline: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The published deployment event's detail: the same shape from the AWS and the local deployer."""
    return {
        "endpoint": endpoint,
        "action": str(decision.action),
        "status": str(outcome.status),
        "reason": outcome.reason,
        "decision": decision.reason,
        "target": asdict(decision.target) if decision.target else None,
        "previous": asdict(decision.live) if decision.live else None,
        "started": started,
        "finished": finished,
        "timeline": [dict(t) for t in timeline],
    }
