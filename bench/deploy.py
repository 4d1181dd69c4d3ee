"""Deployment benchmark: a blue/green swap and an automatic rollback under steady load, on 127.0.0.1.

One real model (the image's own preprocess and train entrypoints on penguins), a local endpoint with
the dev stage's serving settings (canary of 1 of 2 instances, bake, termination wait, rollback
alarms) and its deploy-on-approval deployer, waits compressed by ``TIME_SCALE`` (local only). A few
boto3 ``sagemaker-runtime`` clients call the endpoint back to back throughout.

- swap: steady load, then a good candidate is approved; its deployment runs to the end. Printed:
  requests and failures over both phases, p99 latency of the steady phase and of the swap (from the
  approval to the end of the deployment), and the time from the approval to full traffic on green.
- rollback: a candidate in a serving image that answers 500 is approved; the error-rate alarm rolls
  it back. Printed: requests and failures from the approval to the end, and the seconds from the
  approval until all traffic was back on the old fleet.

Goals: 0 failed requests for the good candidate; p99 during the swap at most 2x the steady p99.
Nothing here is asserted; results vary with the load on the machine (the load average is printed).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Final

from bench.serving import build_model, csv_body
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker.models import LocalRegistry, ModelPackage
from emulators.sagemaker_runtime import DeploymentRecord, EndpointSettings, LocalDeployer, LocalEndpoint
from pipelines.settings import PipelineResources
from rookery.demo.candidates import faulty_image, register_version, retrained_candidate
from rookery.demo.traffic import Call, SteadyTraffic
from stage import load_stage
from stage.names import model_package_group_name

TIME_SCALE: Final = 100.0  # the dev stage's 300 s bake takes 3 s
CLIENTS: Final = 4
STEADY_SECONDS: Final = 3.0
SWAP_P99_GOAL: Final = 2.0


def p99_ms(calls: list[Call]) -> float:
    ordered = sorted(c.seconds for c in calls)
    return 1000 * ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)] if ordered else float("nan")


def approve_and_wait(
    registry: LocalRegistry, endpoint: LocalEndpoint, deployer: LocalDeployer, package: ModelPackage
) -> tuple[float, DeploymentRecord]:
    """Approve ``package`` (the deployer notices, as EventBridge would deliver the change) and wait
    for the deployment it causes to end. Returns the approval's time.monotonic() and the record."""
    before = len(endpoint.deployments)
    approved_at = time.monotonic()
    registry.approve(package.ref, description="bench")
    deadline = approved_at + 600
    while len(endpoint.deployments) == before:
        if time.monotonic() > deadline:
            raise TimeoutError("the deployer did not deploy the approved version within 600 s")
        time.sleep(0.02)
    deployer.wait_idle(60)
    return approved_at, endpoint.deployments[-1]


def when(record: DeploymentRecord, event: str) -> float:
    entry = next(t for t in record.timeline if t.event == event)
    return record.started_monotonic + entry.seconds


def main() -> None:
    stage = load_stage("dev")
    resources = PipelineResources.placeholders(stage)
    settings = EndpointSettings.from_stage(stage, raw_bucket=resources.raw_bucket, time_scale=TIME_SCALE)
    with tempfile.TemporaryDirectory(prefix="rookery-bench-deploy-") as tmp:
        root = Path(tmp)
        model_dir, rows = build_model(root / "model")
        home = LocalHome(root / "home")
        uri = f"s3://{resources.artifacts_bucket}/models/penguins/output/model.tar.gz"
        archive = LocalS3(home).path(uri)
        archive.parent.mkdir(parents=True)
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=path.name)
        shutil.rmtree(model_dir.parent)
        registry = LocalRegistry(home)
        v1 = registry.create(
            model_package_group_name(stage),
            region=stage.region,
            account=resources.role_arn.split(":")[4],
            approval_status="Approved",
            inference_spec={"image": resources.image_uri, "model_data_url": uri, "environment": {}},
            model_metrics={},
            metrics={},
            execution_id=None,
        )
        faulty_uri, faulty_program = faulty_image("errors")
        images = ImageMap({**ImageMap.project(resources.image_uri).images, faulty_uri: faulty_program})
        body = csv_body(rows, 1)
        print(
            f"dev stage policy, time scale {TIME_SCALE:g}x (local only); {CLIENTS} boto3 clients, 1 record "
            f"per request; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        with LocalEndpoint.start(home, images, v1, name="bench-deploy", settings=settings) as endpoint:
            deployer = LocalDeployer(endpoint, registry, v1.group)
            deployer.start()
            try:
                with SteadyTraffic(endpoint.url, endpoint.name, body, clients=CLIENTS) as traffic:
                    time.sleep(STEADY_SECONDS)
                    steady = traffic.calls
                    approved_at, swap = approve_and_wait(
                        registry, endpoint, deployer, retrained_candidate(home, v1)
                    )
                    during = traffic.started_between(
                        approved_at, swap.started_monotonic + swap.timeline[-1].seconds
                    )
                    calls = traffic.calls
                full = when(swap, "TerminationWait") - approved_at
                print(
                    f"swap: requests={len(calls)} failed={sum(not c.ok for c in calls)} "
                    f"p99_steady_ms={p99_ms(steady):.1f} p99_swap_ms={p99_ms(during):.1f}",
                    flush=True,
                )
                ratio = p99_ms(during) / p99_ms(steady)
                print(
                    f"  {swap.status}: approval to full traffic on green {full:.1f} s "
                    f"({swap.reason}); p99 swap/steady {ratio:.2f}x (goal <= {SWAP_P99_GOAL:g}x); "
                    f"p50 steady {1000 * statistics.median(c.seconds for c in steady):.1f} ms",
                    flush=True,
                )
                broken = register_version(
                    home,
                    endpoint.package,
                    description="bench: a serving image that answers 500",
                    image=faulty_uri,
                    environment={"ROOKERY_FAULT": "errors"},
                )
                with SteadyTraffic(endpoint.url, endpoint.name, body, clients=CLIENTS) as traffic:
                    time.sleep(1.0)
                    approved_at, rollback = approve_and_wait(registry, endpoint, deployer, broken)
                    window = traffic.started_between(approved_at, float("inf"))
                back = when(rollback, "TrafficRestored") - approved_at
                failures = sum(not c.ok for c in window)
                print(f"rollback: requests={len(window)} failed={failures} seconds={back:.1f}", flush=True)
                print(f"  {rollback.status}: {rollback.reason}", flush=True)
            finally:
                deployer.stop()
