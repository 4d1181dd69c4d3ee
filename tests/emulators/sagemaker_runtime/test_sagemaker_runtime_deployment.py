"""Blue/green deployments onto a running local endpoint while boto3 clients keep calling it.

Real model servers (the project image's ``serve`` on a model trained by its own entrypoints; a
stand-in container for a broken serving image), the stage's policy and alarm definitions, waits
compressed by a time scale so each deployment takes a few seconds. Where a share is measured the
tolerance is stated; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from runtime_testing import RECORD_CSV, TrainedModel, project_images, registered, serving_stage, settings_for
from test_sagemaker_runtime_capture import capture_lines, check_line
from typer.testing import CliRunner

from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.sagemaker.models import ModelPackage
from emulators.sagemaker_runtime import (
    DeploymentInProgressError,
    DeploymentRecord,
    EndpointNotFoundError,
    LocalEndpoint,
    find_endpoint,
)
from emulators.sagemaker_runtime.models import deployment_records
from rookery.cli.main import app
from rookery.demo.candidates import faulty_candidate, feature_mismatch_candidate, retrained_candidate
from rookery.demo.traffic import Call, SteadyTraffic
from stage import Stage
from stage.names import VARIANT_NAME, alarm_names

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime-deployment")]

NAME = "rookery-dev-local"
SCALE = 40  # 40 s of the policy's time per local second
ALARMS = alarm_names(serving_stage())
# A client's request can be routed just before a switch and answered just after it: shares measured
# from the clients' side get this much slack.
SHARE_TOLERANCE = 0.1


@contextmanager
def served(
    home: LocalHome, model: TrainedModel, stage: Stage, *, images: ImageMap | None = None
) -> Iterator[tuple[LocalEndpoint, ModelPackage]]:
    v1 = registered(home, model)
    settings = settings_for(stage, time_scale=SCALE)
    with LocalEndpoint.start(home, images or project_images(), v1, name=NAME, settings=settings) as endpoint:
        yield endpoint, v1


def at(record: DeploymentRecord, event: str) -> float:
    """When the first ``event`` entry happened, in time.monotonic() seconds."""
    entry = next(t for t in record.timeline if t.event == event)
    return record.started_monotonic + entry.seconds


def steps(record: DeploymentRecord) -> list[str]:
    """The timeline's events without the per-period alarm evaluations."""
    return [t.event for t in record.timeline if t.event != "AlarmsEvaluated"]


def bakes(record: DeploymentRecord) -> list[list[dict[str, Any]]]:
    """The alarm periods evaluated after each traffic step, in order."""
    found: list[list[dict[str, Any]]] = []
    for entry in record.timeline:
        if entry.event == "TrafficShifted":
            found.append([])
        elif entry.event == "AlarmsEvaluated" and entry.period is not None:
            found[-1].append(entry.period)
    return found


def failed(calls: list[Call]) -> list[Call]:
    return [c for c in calls if not c.ok]


def deploy_in_background(
    endpoint: LocalEndpoint, package: ModelPackage, **kwargs: Any
) -> tuple[threading.Thread, list[DeploymentRecord]]:
    result: list[DeploymentRecord] = []
    thread = threading.Thread(target=lambda: result.append(endpoint.deploy(package, **kwargs)))
    thread.start()
    return thread, result


def test_a_good_candidate_swaps_under_steady_boto3_traffic_without_a_failed_request(
    home: LocalHome, model: TrainedModel
) -> None:
    stage = serving_stage(wait_seconds=40, termination_wait_seconds=10, period_seconds=10)
    with served(home, model, stage) as (endpoint, v1):
        v2 = retrained_candidate(home, v1, approval_status="Approved")
        with SteadyTraffic(endpoint.url, NAME, RECORD_CSV, clients=2, inference_ids=True) as traffic:
            traffic.wait_for(20)
            thread, result = deploy_in_background(endpoint, v2)
            during = _describe_while_updating(home)
            # One deployment at a time: another one is refused while this one runs.
            with pytest.raises(DeploymentInProgressError, match="is being updated"):
                endpoint.deploy(retrained_candidate(home, v1))
            thread.join()
            traffic.wait_for(len(traffic.calls) + 20)
        after = find_endpoint(home, NAME)
    record = result[0]
    calls = traffic.calls
    assert record.status == "Succeeded", record.reason
    assert record.reason == "the endpoint serves version 2, InService"
    assert not failed(calls), failed(calls)[:3]
    # describe showed the update while it ran: Updating, the new fleet pending beside the old one.
    assert during["EndpointStatus"] == "Updating"
    assert during["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantName"] == VARIANT_NAME
    assert [f["Role"] for f in during["Fleets"]] == ["blue", "green"]
    # The canary policy's steps, in order, each followed by a bake with the alarms evaluated.
    assert steps(record) == [
        "DeploymentStarted",
        "NewFleetHealthy",
        "TrafficShifted",
        "Baking",
        "TrafficShifted",
        "Baking",
        "TerminationWait",
        "OldFleetStopped",
        "DeploymentSucceeded",
    ]
    shifts = [t.shares for t in record.timeline if t.event == "TrafficShifted"]
    assert shifts == [{"blue": 0.5, "green": 0.5}, {"blue": 0.0, "green": 1.0}]
    first, second = bakes(record)
    assert first and second
    # The endpoint's own measurements: in each period of the first bake green answered the canary's
    # share of the invocations (1 of 2 instances: half, within two requests); after the second step
    # (once the period that straddles it is over) blue answered none.
    for period in first:
        counts = period["Invocations"]
        assert abs(counts.get("green", 0) - sum(counts.values()) / 2) <= 2, counts
    assert all(p["Invocations"].get("blue", 0) == 0 for p in second[1:]), second
    assert all(s["StateValue"] == "OK" for p in first + second for s in p["Alarms"])
    assert after["EndpointStatus"] == "InService" and "FailureReason" not in after
    assert after["ModelPackageArn"] == v2.arn
    assert [(f["Role"], f["ModelPackage"], f["TrafficShare"]) for f in after["Fleets"]] == [
        ("blue", v2.ref, 1.0)
    ]
    assert after["LastDeployment"]["Status"] == "Succeeded"
    # Data capture (the dev stage samples 100%): every call, with its InferenceId, in complete files.
    lines = [check_line(line) for _, line in capture_lines(home)]
    assert sorted(line["eventMetadata"]["inferenceId"] for line in lines) == sorted(
        str(c.inference_id) for c in calls
    )
    assert not list((endpoint.folder / "capture-staging").iterdir())
    # The endpoint is gone (not found, as a deleted one); its deployment records stay.
    with pytest.raises(EndpointNotFoundError, match=f"endpoint '{NAME}' is not running"):
        find_endpoint(home, NAME)
    assert [(r["DeploymentId"], r["Status"]) for r in deployment_records(home, NAME)] == [
        (record.id, "Succeeded")
    ]


def _describe_while_updating(home: LocalHome) -> dict[str, Any]:
    """``rookery local endpoint describe --json`` as soon as the endpoint is Updating with two fleets."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = find_endpoint(home, NAME)
        if record["EndpointStatus"] == "Updating" and len(record["Fleets"]) == 2:
            runner = CliRunner()
            as_json = runner.invoke(
                app, ["local", "endpoint", "describe", NAME, "--json", "--home", str(home.root)]
            )
            assert as_json.exit_code == 0, as_json.output
            shown = runner.invoke(app, ["local", "endpoint", "describe", NAME, "--home", str(home.root)])
            assert shown.exit_code == 0, shown.output
            assert "Updating" in shown.stdout and "current deployment" in shown.stdout
            described: dict[str, Any] = json.loads(as_json.stdout)
            return described
        time.sleep(0.02)
    raise AssertionError("the endpoint never showed Updating with two fleets")


def test_a_candidate_answering_5xx_is_rolled_back_by_the_error_rate_alarm(
    home: LocalHome, model: TrainedModel
) -> None:
    # 4 instances, a canary of 1: a quarter of the traffic goes to the candidate during the bake.
    stage = serving_stage(instances=4, wait_seconds=120, period_seconds=10)
    with served(home, model, stage) as (endpoint, v1):
        broken, images = faulty_candidate(
            home, v1, endpoint.images, fault="errors", approval_status="Approved"
        )
        with SteadyTraffic(endpoint.url, NAME, RECORD_CSV, clients=2) as traffic:
            traffic.wait_for(20)
            record = endpoint.deploy(broken, images=images)
            restored = at(record, "TrafficRestored")
            traffic.wait_for(len(traffic.calls) + 40)
        after = find_endpoint(home, NAME)
    assert record.status == "Failed"
    assert record.reason.startswith(f"the update to version 2 was rolled back ({ALARMS['errors']} ALARM")
    assert record.reason.endswith("; the endpoint serves version 1")
    assert record.alarm is not None and record.alarm["AlarmName"] == ALARMS["errors"]
    assert record.alarm["Breaching"] >= record.alarm["DatapointsToAlarm"] == 2
    breaching = [v for v in record.alarm["Datapoints"] if v is not None and v > record.alarm["Threshold"]]
    assert len(breaching) == record.alarm["Breaching"]
    assert steps(record) == [
        "DeploymentStarted",
        "NewFleetHealthy",
        "TrafficShifted",
        "Baking",
        "TrafficRestored",
        "NewFleetStopped",
        "DeploymentFailed",
    ]
    assert [t.status for t in record.timeline if t.event == "TrafficRestored"] == ["RollingBack"]
    # Clients saw errors only from the canary: at most its share (1 of 4 instances) during the bake...
    bake = traffic.started_between(at(record, "TrafficShifted"), restored)
    share = len(failed(bake)) / len(bake)
    assert 0 < share <= 0.25 + SHARE_TOLERANCE, (share, len(bake))
    assert {c.error for c in failed(bake)} == {"ModelError"}
    # ...and none once traffic was back on the old fleet.
    assert not failed(traffic.started_between(restored, float("inf")))
    assert after["EndpointStatus"] == "InService" and after["ModelPackageArn"] == v1.arn
    assert after["FailureReason"] == record.reason
    assert [f["ModelPackage"] for f in after["Fleets"]] == [v1.ref]


def test_a_candidate_breaching_the_latency_slo_is_rolled_back_by_the_latency_alarm(
    home: LocalHome, model: TrainedModel
) -> None:
    stage = serving_stage(wait_seconds=120, period_seconds=30, model_latency_p99_ms=100)
    with served(home, model, stage) as (endpoint, v1):
        slow, images = faulty_candidate(home, v1, endpoint.images, fault="slow", delay_ms=400)
        with SteadyTraffic(endpoint.url, NAME, RECORD_CSV, clients=2) as traffic:
            traffic.wait_for(20)
            record = endpoint.deploy(slow, images=images)
        assert endpoint.package.arn == v1.arn
    assert record.status == "Failed"
    assert record.alarm is not None and record.alarm["AlarmName"] == ALARMS["model_latency"]
    assert record.alarm["Threshold"] == 100_000  # microseconds: the metric's unit
    assert f"rolled back ({ALARMS['model_latency']} ALARM (ModelLatency p99" in record.reason
    assert not failed(traffic.calls)  # slow, never wrong: no client saw an error


def test_a_candidate_that_never_becomes_healthy_fails_before_any_traffic_moves(
    home: LocalHome, model: TrainedModel
) -> None:
    stage = serving_stage(wait_seconds=20, period_seconds=10)
    with served(home, model, stage) as (endpoint, v1):
        mismatched = feature_mismatch_candidate(home, v1, approval_status="Approved")
        with SteadyTraffic(endpoint.url, NAME, RECORD_CSV, clients=1) as traffic:
            traffic.wait_for(10)
            record = endpoint.deploy(mismatched)
            traffic.wait_for(len(traffic.calls) + 10)
        after = find_endpoint(home, NAME)
    assert record.status == "Failed"
    assert record.reason.startswith("the update to version 2 failed: the new fleet never became healthy")
    assert "booster expects" in record.reason  # the image's own reason, from its failure file or log
    assert steps(record) == ["DeploymentStarted", "NewFleetUnhealthy", "DeploymentFailed"]
    assert all(t.shares == {"blue": 1.0} for t in record.timeline)
    assert not failed(traffic.calls)
    assert after["EndpointStatus"] == "InService" and after["ModelPackageArn"] == v1.arn


def test_a_linear_policy_shifts_a_step_of_instances_at_a_time(home: LocalHome, model: TrainedModel) -> None:
    stage = serving_stage(traffic="linear", instances=4, wait_seconds=10, termination_wait_seconds=0)
    with served(home, model, stage) as (endpoint, v1):
        v2 = retrained_candidate(home, v1)
        with SteadyTraffic(endpoint.url, NAME, RECORD_CSV, clients=1) as traffic:
            traffic.wait_for(5)
            record = endpoint.deploy(v2)
    assert record.status == "Succeeded", record.reason
    shifts = [t.shares["green"] for t in record.timeline if t.event == "TrafficShifted"]
    assert shifts == [0.25, 0.5, 0.75, 1.0]
    assert not failed(traffic.calls)
