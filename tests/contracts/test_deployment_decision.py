"""The deployment decision shared by the AWS and the local deployer (rookery_contracts.deployment).

The decision reads the registry and the live endpoint, never the event that woke the deployer, so
the properties below drive it with registries and event deliveries drawn by hypothesis: duplicated,
stale and out-of-order deliveries converge on the highest approved version; rejecting the live
version rolls back; nothing approved holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rookery_contracts.deployment import (
    APPROVED,
    PENDING,
    REJECTED,
    Action,
    DeploymentError,
    PackageVersion,
    StackState,
    Status,
    UpdateResult,
    decide,
    event_detail,
    highest_approved,
    same_arn,
    stack_state,
    update_result,
    verify,
    version_of,
)

GROUP = "rookery-dev-models"
STATUSES = (APPROVED, REJECTED, PENDING)


def arn(version: int, group: str = GROUP) -> str:
    return f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{group}/{version}"


def listing(statuses: dict[int, str]) -> list[PackageVersion]:
    return [PackageVersion(arn(v), v, s) for v, s in statuses.items()]


@dataclass
class World:
    """A registry, the events its changes emitted, and an endpoint that a deployer keeps in step."""

    registry: dict[int, str]
    live: str | None = None
    pending_events: list[int] = field(default_factory=list)
    deployments: int = 0

    def change(self, version: int, status: str) -> None:
        self.registry[version] = status
        self.pending_events.append(version)  # the event names the version; the decision ignores it

    def deliver(self) -> None:
        decision = decide(listing(self.registry), self.live)
        if decision.changes_endpoint:
            assert decision.target is not None
            self.live = decision.target.arn
            self.deployments += 1


changes = st.lists(st.tuples(st.integers(1, 6), st.sampled_from(STATUSES)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    initial=st.dictionaries(st.integers(1, 6), st.sampled_from(STATUSES), max_size=6),
    changes=changes,
    schedule=st.lists(st.integers(0, 30), max_size=40),
    late=st.lists(st.integers(0, 30), max_size=6),
)
def test_duplicate_stale_and_out_of_order_deliveries_converge_on_the_highest_approved(
    initial: dict[int, str], changes: list[tuple[int, str]], schedule: list[int], late: list[int]
) -> None:
    world = World(dict(initial))
    world.deliver()  # the endpoint starts in step with the registry
    steps = iter(schedule)
    for version, status in changes:
        world.change(version, status)
        # Any number of earlier events (duplicates, stale ones, in any order) may arrive meanwhile.
        for _ in range(next(steps, 0) % 3):
            if world.pending_events:
                world.deliver()
    # At least one delivery happens after the last change; which event it carries does not matter,
    # and more (duplicates of stale events) change nothing.
    world.deliver()
    settled, deployments = world.live, world.deployments
    for _ in late:
        world.deliver()
    assert (world.live, world.deployments) == (settled, deployments)
    best = highest_approved(listing(world.registry))
    if best is not None:
        assert world.live == best.arn
        assert decide(listing(world.registry), world.live).action is Action.NONE


@settings(max_examples=100, deadline=None)
@given(statuses=st.dictionaries(st.integers(1, 8), st.sampled_from(STATUSES), min_size=1, max_size=8))
def test_highest_approved_wins_whatever_the_listing_order(statuses: dict[int, str]) -> None:
    versions = listing(statuses)
    approved = [v for v, s in statuses.items() if s == APPROVED]
    for ordering in (versions, versions[::-1], sorted(versions, key=lambda v: v.status)):
        decision = decide(ordering, None)
        if approved:
            assert decision.action is Action.DEPLOY
            assert decision.target is not None and decision.target.version == max(approved)
        else:
            assert decision.action is Action.NONE and decision.target is None


@settings(max_examples=100, deadline=None)
@given(
    statuses=st.dictionaries(st.integers(1, 8), st.sampled_from(STATUSES), min_size=1, max_size=8),
    live_version=st.integers(1, 8),
)
def test_rejecting_the_live_version_rolls_back_to_the_previous_approved_or_holds(
    statuses: dict[int, str], live_version: int
) -> None:
    statuses[live_version] = REJECTED
    decision = decide(listing(statuses), arn(live_version))
    remaining = [v for v, s in statuses.items() if s == APPROVED]
    older = [v for v in remaining if v < live_version]
    if not remaining:
        assert decision.action is Action.HOLD and not decision.changes_endpoint
        assert decision.live is not None and decision.live.version == live_version
        assert "approve a version" in decision.reason
    elif max(remaining) < live_version:
        assert decision.action is Action.ROLLBACK and decision.changes_endpoint
        assert decision.target is not None and decision.target.version == max(older)
        assert f"live version {live_version} is Rejected" in decision.reason
    else:
        assert decision.action is Action.DEPLOY
        assert decision.target is not None and decision.target.version == max(remaining)


@settings(max_examples=100, deadline=None)
@given(
    statuses=st.dictionaries(st.integers(1, 8), st.sampled_from((REJECTED, PENDING)), min_size=1, max_size=8),
    live_version=st.none() | st.integers(1, 8),
)
def test_with_nothing_approved_the_endpoint_is_held_never_changed(
    statuses: dict[int, str], live_version: int | None
) -> None:
    decision = decide(listing(statuses), None if live_version is None else arn(live_version))
    assert not decision.changes_endpoint and decision.target is None
    assert decision.action is (Action.NONE if live_version is None else Action.HOLD)


def test_a_live_version_missing_from_the_registry_is_unknown_and_replaced() -> None:
    decision = decide(listing({1: APPROVED}), arn(4))
    assert decision.action is Action.ROLLBACK
    assert decision.live == PackageVersion(arn(4), 4, "Unknown")
    assert decide(listing({5: APPROVED}), arn(4)).action is Action.DEPLOY


def test_the_endpoint_already_serving_the_target_is_a_no_op_whatever_the_arn_case() -> None:
    typed = arn(2).replace(GROUP, "Rookery-Dev-Models")
    decision = decide(listing({1: APPROVED, 2: APPROVED}), typed)
    assert decision.action is Action.NONE
    assert "already serves version 2" in decision.reason
    assert same_arn(typed, arn(2)) and not same_arn(arn(2), arn(3)) and not same_arn(None, arn(2))


def test_package_versions_from_registry_summaries() -> None:
    summary = {"ModelPackageArn": arn(7), "ModelPackageVersion": 7, "ModelApprovalStatus": APPROVED}
    assert PackageVersion.from_summary(summary) == PackageVersion(arn(7), 7, APPROVED)
    # ListModelPackages summaries of versioned packages carry the version in the ARN only.
    assert PackageVersion.from_summary({"ModelPackageArn": arn(3)}) == PackageVersion(arn(3), 3, PENDING)
    with pytest.raises(DeploymentError, match="without ModelPackageArn"):
        PackageVersion.from_summary({"ModelPackageVersion": 1})


@pytest.mark.parametrize(
    "bad",
    [
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/unversioned-package",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/12",  # an unversioned package named 12
        "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/rookery-dev-endpoint/3",
        "rookery-dev-models/3",
    ],
)
def test_only_versioned_model_package_arns_have_a_version(bad: str) -> None:
    with pytest.raises(DeploymentError, match="not a versioned model package ARN"):
        version_of(bad)


def test_version_of_a_versioned_arn() -> None:
    assert version_of(arn(12)) == 12
    assert version_of("arn:aws-cn:sagemaker:cn-north-1:123456789012:model-package/g-2/3") == 3


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("UPDATE_COMPLETE", StackState.READY),
        ("CREATE_COMPLETE", StackState.READY),
        ("UPDATE_ROLLBACK_COMPLETE", StackState.READY),
        ("UPDATE_IN_PROGRESS", StackState.BUSY),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", StackState.BUSY),
        ("UPDATE_ROLLBACK_IN_PROGRESS", StackState.BUSY),
        ("UPDATE_ROLLBACK_FAILED", StackState.BROKEN),
        ("ROLLBACK_COMPLETE", StackState.BROKEN),
        ("DELETE_COMPLETE", StackState.BROKEN),
    ],
)
def test_stack_state_is_the_lock_of_one_deployment_at_a_time(status: str, state: StackState) -> None:
    assert stack_state(status) is state


def test_update_results_by_final_stack_status() -> None:
    assert update_result("UPDATE_COMPLETE") is UpdateResult.UPDATED
    assert update_result("UPDATE_ROLLBACK_COMPLETE") is UpdateResult.ROLLED_BACK
    assert update_result("UPDATE_FAILED") is UpdateResult.FAILED


def test_success_means_updated_and_in_service_on_the_requested_package() -> None:
    ok = verify(arn(3), update=UpdateResult.UPDATED, endpoint_status="InService", serving_arn=arn(3))
    assert ok.status is Status.SUCCEEDED and ok.reason == "the endpoint serves version 3, InService"


def test_an_update_that_left_the_old_model_live_is_a_failure_never_a_success() -> None:
    silent = verify(arn(3), update=UpdateResult.UPDATED, endpoint_status="InService", serving_arn=arn(2))
    assert silent.status is Status.FAILED
    assert "serves version 2, not version 3" in silent.reason
    rolled = verify(
        arn(3),
        update=UpdateResult.ROLLED_BACK,
        endpoint_status="InService",
        serving_arn=arn(2),
        update_reason="alarm rookery-dev-endpoint-5xx-rate",
    )
    assert rolled.status is Status.FAILED
    assert rolled.reason == (
        "the update to version 3 was rolled back (alarm rookery-dev-endpoint-5xx-rate); "
        "the endpoint serves version 2"
    )
    failed = verify(arn(3), update=UpdateResult.FAILED, endpoint_status="InService", serving_arn=arn(2))
    assert failed.status is Status.FAILED and failed.reason.startswith("the update to version 3 failed")
    updating = verify(arn(3), update=UpdateResult.UPDATED, endpoint_status="Updating", serving_arn=arn(3))
    assert updating.status is Status.FAILED and "Updating, not InService" in updating.reason


def test_the_published_detail_carries_decision_outcome_and_timeline() -> None:
    decision = decide(listing({1: APPROVED, 2: APPROVED}), arn(1))
    outcome = verify(arn(2), update=UpdateResult.UPDATED, endpoint_status="InService", serving_arn=arn(2))
    detail = event_detail(
        "rookery-dev-endpoint",
        decision,
        outcome,
        started="2024-05-01T10:00:00+00:00",
        finished="2024-05-01T10:12:00+00:00",
        timeline=[{"event": "traffic shifted", "green": 0.5}],
    )
    assert detail["action"] == "deploy" and detail["status"] == "Succeeded"
    assert detail["target"] == {"arn": arn(2), "version": 2, "status": APPROVED}
    assert detail["previous"] == {"arn": arn(1), "version": 1, "status": APPROVED}
    assert detail["timeline"] == [{"event": "traffic shifted", "green": 0.5}]
