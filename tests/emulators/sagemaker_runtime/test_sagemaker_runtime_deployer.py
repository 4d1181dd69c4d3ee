"""Deploy on approval, locally: registry events in (duplicated, stale, out of order), deployments out.

The decisions are ``rookery_contracts.deployment.decide`` (property-tested in tests/contracts);
these tests drive the local deployer with real model servers and events as EventBridge would
deliver them, then the CLI end to end: ``rookery local serve`` in its own process, ``approve`` and
``reject`` following the deployment, a boto3 client calling all along.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from runtime_testing import (
    GROUP,
    RECORD_CSV,
    RECORD_JSON,
    TrainedModel,
    project_images,
    registered,
    serving_stage,
    settings_for,
)
from typer.testing import CliRunner

from emulators.core.home import LocalHome
from emulators.sagemaker.events import DETAIL_TYPE, RegistryWatcher, package_state_change
from emulators.sagemaker.models import LocalRegistry, ModelPackage
from emulators.sagemaker_runtime import LocalDeployer, LocalEndpoint, find_endpoint
from rookery.cli.main import app
from rookery.demo.candidates import feature_mismatch_candidate, retrained_candidate
from rookery.demo.traffic import SteadyTraffic

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime-deployer")]

REPO = Path(__file__).resolve().parents[2]
NAME = "rookery-dev-local"


def test_the_registry_watcher_delivers_every_write_as_a_state_change_event(home: LocalHome) -> None:
    registry = LocalRegistry(home)
    spec = {"image": "i", "model_data_url": "s3://b/m.tar.gz", "environment": {}}
    make = dict(region="eu-west-1", account="123456789012", inference_spec=spec, model_metrics={}, metrics={})
    registry.create(GROUP, approval_status="Approved", execution_id=None, **make)  # type: ignore[arg-type]
    events: list[dict[str, object]] = []
    watcher = RegistryWatcher(registry, GROUP, events.append)
    assert watcher.scan() == 0  # what exists when watching starts is no change
    registry.create(GROUP, approval_status="PendingManualApproval", execution_id=None, **make)  # type: ignore[arg-type]
    registry.approve(f"{GROUP}/2")
    assert watcher.scan() == 1  # two writes of one version between scans: one event, its latest state
    registry.approve(f"{GROUP}/2")  # a write that leaves the status as it was is still a change
    assert watcher.scan() == 1 and watcher.scan() == 0
    event = events[0]
    assert event["detail-type"] == DETAIL_TYPE and event["source"] == "aws.sagemaker"
    assert event["resources"] == [f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/2"]
    assert event["detail"] == {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 2,
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/2",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": None,
        "CreationTime": registry.get(f"{GROUP}/2").created_at.isoformat(),
    }


@contextmanager
def deploying(
    home: LocalHome, model: TrainedModel, **policy: object
) -> Iterator[tuple[LocalEndpoint, LocalDeployer, ModelPackage]]:
    """An endpoint on version 1 with a deployer that takes events only from ``deliver``."""
    v1 = registered(home, model)
    stage = serving_stage(**policy)
    settings = settings_for(stage, time_scale=40)
    with LocalEndpoint.start(home, project_images(), v1, name=NAME, settings=settings) as endpoint:
        deployer = LocalDeployer(endpoint, LocalRegistry(home), GROUP)
        deployer.start(watch=False)
        try:
            yield endpoint, deployer, v1
        finally:
            deployer.stop()


def event(registry: LocalRegistry, ref: str, status: str | None = None) -> dict[str, object]:
    """The state change event of ``ref``; ``status`` overrides what it says (a stale event)."""
    found = package_state_change(registry.get(ref))
    if status is not None:
        found["detail"]["ModelApprovalStatus"] = status
    return found


def settle(deployer: LocalDeployer) -> None:
    assert deployer.wait_idle(120), "the deployer did not settle"


def test_duplicate_stale_and_out_of_order_events_converge_on_the_highest_approved(
    home: LocalHome, model: TrainedModel
) -> None:
    registry = LocalRegistry(home)
    with deploying(home, model, traffic="all_at_once", wait_seconds=0, termination_wait_seconds=0) as (
        endpoint,
        deployer,
        v1,
    ):
        v2, v3 = retrained_candidate(home, v1), retrained_candidate(home, v1)
        # Stale and duplicated: v1's approval again and again, and a "v2 approved" that never happened.
        for _ in range(3):
            deployer.deliver(event(registry, v1.ref))
        deployer.deliver(event(registry, v2.ref, status="Approved"))
        settle(deployer)
        assert endpoint.deployments == [] and endpoint.package.arn == v1.arn
        assert {d["Action"] for d in endpoint.decisions} == {"none"}
        # Both approved; their events arrive newest first, then duplicated and stale ("v3 pending").
        registry.approve(v2.ref)
        registry.approve(v3.ref)
        for ref, status in (
            (v3.ref, None),
            (v2.ref, None),
            (v3.ref, "PendingManualApproval"),
            (v2.ref, None),
        ):
            deployer.deliver(event(registry, ref, status))
        settle(deployer)
        assert [d.target.ref for d in endpoint.deployments] == [v3.ref]  # straight to the highest, once
        assert endpoint.deployments[0].status == "Succeeded" and endpoint.package.arn == v3.arn
        # Late duplicates of either change, after the deployment, change nothing.
        deployer.deliver(event(registry, v2.ref))
        deployer.deliver(event(registry, v3.ref))
        settle(deployer)
        assert len(endpoint.deployments) == 1
        assert endpoint.decisions[-1]["Action"] == "none"
        assert "already serves version 3" in endpoint.decisions[-1]["Reason"]


def test_an_approval_during_a_deployment_is_decided_after_it_ends(
    home: LocalHome, model: TrainedModel
) -> None:
    registry = LocalRegistry(home)
    with deploying(home, model, wait_seconds=20, termination_wait_seconds=0) as (endpoint, deployer, v1):
        v2, v3 = retrained_candidate(home, v1), retrained_candidate(home, v1)
        registry.approve(v2.ref)
        deployer.deliver(event(registry, v2.ref))
        deadline = time.monotonic() + 60
        while not endpoint.deploying and time.monotonic() < deadline:
            time.sleep(0.01)
        assert endpoint.deploying
        registry.approve(v3.ref)
        deployer.deliver(event(registry, v3.ref))
        settle(deployer)
        assert [(d.target.ref, d.status) for d in endpoint.deployments] == [
            (v2.ref, "Succeeded"),
            (v3.ref, "Succeeded"),
        ]
        second = next(d for d in endpoint.decisions if d["DeploymentId"] == endpoint.deployments[1].id)
        assert second["Time"] >= endpoint.deployments[0].to_json()["EndTime"]
        assert endpoint.package.arn == v3.arn


def test_rejecting_the_live_version_rolls_back_and_with_nothing_approved_holds(
    home: LocalHome, model: TrainedModel
) -> None:
    registry = LocalRegistry(home)
    with deploying(home, model, traffic="all_at_once", wait_seconds=0, termination_wait_seconds=0) as (
        endpoint,
        deployer,
        v1,
    ):
        v2 = retrained_candidate(home, v1, approval_status="Approved")
        deployer.deliver(event(registry, v2.ref))
        settle(deployer)
        assert endpoint.package.arn == v2.arn
        registry.set_status(v2.ref, "Rejected")
        deployer.deliver(event(registry, v2.ref))
        settle(deployer)
        rollback = endpoint.deployments[-1]
        assert rollback.action == "rollback" and rollback.status == "Succeeded"
        assert endpoint.package.arn == v1.arn
        assert endpoint.decisions[-1]["Reason"].startswith(
            "live version 2 is Rejected: rolling back to version 1"
        )
        # Rejecting the last approved one leaves nothing to go back to: the endpoint holds.
        registry.set_status(v1.ref, "Rejected")
        deployer.deliver(event(registry, v1.ref))
        settle(deployer)
        assert endpoint.decisions[-1]["Action"] == "hold" and endpoint.package.arn == v1.arn
        assert len(endpoint.deployments) == 2
        # A registry the deployer cannot read is said in its decision; the deployer keeps going.
        corrupt = registry.root / GROUP / "3.json"
        corrupt.write_text("{not json", encoding="utf-8")
        deployer.deliver(event(registry, v1.ref))
        settle(deployer)
        assert endpoint.decisions[-1]["Action"] == "error"
        assert endpoint.decisions[-1]["Reason"].startswith("cannot read the registry")
        corrupt.unlink()
        registry.approve(v1.ref)
        deployer.deliver(event(registry, v1.ref))
        settle(deployer)
        assert endpoint.decisions[-1]["Action"] == "none"


# -- the CLI, end to end ------------------------------------------------------------------------------


@contextmanager
def serve_process(home: LocalHome, *extra: str) -> Iterator[tuple[str, list[str]]]:
    """``rookery local serve`` in its own process: (its URL, its output lines so far)."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rookery"), "local", "serve", "--stage", "dev", "--port", "0",
         "--name", NAME, "--home", str(home.root), *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops the endpoint"):
                break
        url = re.search(r"URL: (http://127\.0\.0\.1:\d+)", "".join(lines))
        assert url is not None, "serve printed no URL:\n" + "".join(lines)
        yield url.group(1), lines
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=120)[0]
        lines.extend(rest.splitlines(keepends=True))
    assert process.returncode == 0, "".join(lines)


def cli(home: LocalHome, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["local", *args, "--home", str(home.root)])
    return result.exit_code, result.stdout, result.stderr


def test_approve_and_reject_follow_the_deployments_of_a_served_endpoint(
    home: LocalHome, model: TrainedModel
) -> None:
    v1 = registered(home, model)
    with serve_process(home, "--time-scale", "300") as (url, lines):
        assert any("time scale 300x" in line and "local-only" in line for line in lines), lines
        v2 = retrained_candidate(home, v1)
        with SteadyTraffic(url, NAME, RECORD_CSV, clients=1) as traffic:
            traffic.wait_for(5)
            code, out, _ = cli(home, "approve", v2.ref)
            assert code == 0, out
            assert "decision: deploy: version 2 is the highest approved" in out
            assert re.search(r"TrafficShifted\s+Updating\s+blue 50% green 50%", out), out
            assert "AlarmsEvaluated" in out and "rookery-dev-endpoint-5xx-rate OK" in out
            assert "outcome: Succeeded: the endpoint serves version 2, InService" in out
            assert find_endpoint(home, NAME)["ModelPackageArn"] == v2.arn
            # Approving a version again changes nothing: the deployer says so.
            code, out, _ = cli(home, "approve", v2.ref)
            assert code == 0 and "decision: none: the endpoint already serves version 2" in out
            # Rejecting the live version rolls back to the previous approved one.
            code, out, _ = cli(home, "reject", v2.ref)
            assert code == 0, out
            assert "decision: rollback: live version 2 is Rejected: rolling back to version 1" in out
            assert "outcome: Succeeded: the endpoint serves version 1, InService" in out
            # A candidate the image refuses to load: the deployment fails, nothing moved, exit 1.
            broken = feature_mismatch_candidate(home, v1)
            code, out, _ = cli(home, "approve", broken.ref)
            assert code == 1, out
            assert "NewFleetUnhealthy" in out and "booster expects" in out
            assert (
                "outcome: Failed: the update to version 3 failed: the new fleet never became healthy" in out
            )
            traffic.wait_for(len(traffic.calls) + 5)
        code, out, _ = cli(home, "endpoint", "describe", NAME)
        assert code == 0 and "InService" in out and "last deployment" in out and "Failed" in out
    assert traffic.calls and all(c.ok for c in traffic.calls), [c for c in traffic.calls if not c.ok][:3]
    # The serve process printed each deployment as it went.
    assert sum("DeploymentSucceeded" in line for line in lines) == 2
    assert any("DeploymentFailed" in line for line in lines)


def test_a_json_client_and_the_variant_header(home: LocalHome, model: TrainedModel) -> None:
    import boto3  # noqa: PLC0415
    from botocore.exceptions import ClientError  # noqa: PLC0415

    v1 = registered(home, model)
    with LocalEndpoint.start(home, project_images(), v1, name=NAME) as endpoint:
        runtime = boto3.client(
            "sagemaker-runtime",
            endpoint_url=endpoint.url,
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        answer = runtime.invoke_endpoint(
            EndpointName=NAME, ContentType="application/json", Body=RECORD_JSON, TargetVariant="primary"
        )
        assert answer["InvokedProductionVariant"] == "primary"
        assert answer["Body"].read().startswith(b'{"predictions":')
        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint(
                EndpointName=NAME, ContentType="text/csv", Body=RECORD_CSV, TargetVariant="blue"
            )
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert "The variant blue of endpoint rookery-dev-local is not valid" in str(caught.value)
        # Served without a deployer: an approval is recorded and said to deploy nowhere.
        v2 = retrained_candidate(home, v1)
        code, out, _ = cli(home, "approve", v2.ref)
        assert code == 0 and f"{v2.ref} is Approved" in out
        assert "rookery-dev-local runs without deploy on approval" in out
        assert endpoint.package.arn == v1.arn


def test_bad_input_gets_a_clear_error(home: LocalHome, model: TrainedModel) -> None:
    registered(home, model)
    code, _, err = cli(home, "endpoint", "describe", "nope")
    assert code == 2 and "endpoint 'nope' is not running" in err and "rookery local serve --name nope" in err
    code, _, err = cli(home, "endpoint", "describe")
    assert code == 2 and "no local endpoint is running" in err
    code, _, err = cli(home, "approve", f"{GROUP}/9")
    assert code == 2 and f"no model package '{GROUP}/9'" in err and f"{GROUP}/1" in err
    code, _, err = cli(home, "reject", "not-a-reference")
    assert code == 2 and "not-a-reference" in err
    code, _, err = cli(home, "serve", "--stage", "dev", "--port", "0", "--time-scale", "0")
    assert code == 2 and "time scale 0.0 is not within 1-1000" in err
    assert not (home.endpoints_dir / "rookery-dev-local" / "endpoint.json").exists()
