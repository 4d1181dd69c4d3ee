"""The local endpoint as SageMaker models one: status, production variant, fleets, deployments.

:class:`LocalEndpoint` serves one model package on 127.0.0.1 (``POST /endpoints/<name>/invocations``,
see ``responses.py``), and replaces it with another by a blue/green deployment under the stage's
policy and rollback alarms (``deployment.py``). Its state is written, on every change, to
``<home>/endpoints/<name>/endpoint.json`` in ``DescribeEndpoint``'s shape plus what only a local
endpoint has (its URL, process, time scale, the deployer's decisions); each finished deployment is
kept in ``deployments/<id>.json``. ``endpoint.json`` is removed when the endpoint stops (a deleted
endpoint is not found); the deployment records stay.

Status words are SageMaker's: ``Creating``, ``InService``, ``Updating`` (a deployment is running),
``RollingBack`` (an alarm fired: traffic is back on the old fleet, the new one is stopping),
``Failed``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from emulators.core import lifetime
from emulators.core.errors import EndpointError
from emulators.core.files import write_whole
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.sagemaker.models import LocalRegistry, ModelPackage, now
from emulators.sagemaker_runtime.capture import Captured, CaptureSettings, CaptureWriter
from emulators.sagemaker_runtime.exceptions import (
    DeploymentInProgressError,
    EndpointNotFoundError,
    ServiceError,
    internal_failure,
    service_unavailable,
)
from emulators.sagemaker_runtime.fleets import Fleet, ModelAnswer, Router
from emulators.sagemaker_runtime.metrics import Invocation, Measurements
from rookery_contracts.deployment import Action, Decision, PackageVersion
from stage.alarms import RollbackAlarm, rollback_alarms
from stage.model import Stage
from stage.names import CAPTURE_PREFIX, VARIANT_NAME
from stage.serving import DeploymentPolicy

if TYPE_CHECKING:
    from emulators.core.serving import ServeProcess
    from emulators.sagemaker_runtime.responses import FrontEnd

ENDPOINT_FILE: Final = "endpoint.json"
DEPLOYMENTS_DIR: Final = "deployments"
MAX_TIME_SCALE: Final = 1000.0
MAX_DECISIONS: Final = 50
_NAME: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    ROLLING_BACK = "RollingBack"
    FAILED = "Failed"


def _immediate() -> DeploymentPolicy:
    return DeploymentPolicy(traffic="all_at_once", wait_seconds=0, termination_wait_seconds=0)


@dataclass(frozen=True)
class EndpointSettings:
    """How the endpoint is run and updated: the stage's serving settings, as an endpoint config.

    ``time_scale`` divides every wait of a deployment (bake, termination wait, execution timeout) and
    the alarm period: a local-only convenience, so a 300 s bake can be watched in 5 s at 60x.
    Latencies and thresholds are never scaled.
    """

    instances: int = 1
    policy: DeploymentPolicy = field(default_factory=_immediate)
    alarms: tuple[RollbackAlarm, ...] = ()
    capture: CaptureSettings | None = None
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.time_scale, int | float) or not 1 <= self.time_scale <= MAX_TIME_SCALE:
            raise EndpointError(
                f"time scale {self.time_scale!r} is not within 1-{MAX_TIME_SCALE:g}; it divides the "
                "deployment's waits and the alarm period for local runs (1 = real time, 60 = a 300 s "
                "bake in 5 s)"
            )
        if self.instances < 1:
            raise EndpointError(f"instance count {self.instances} must be at least 1")
        periods = {a.period_seconds for a in self.alarms}
        if len(periods) > 1:
            raise EndpointError(f"the rollback alarms must share one period, not {sorted(periods)}")

    @classmethod
    def from_stage(cls, stage: Stage, *, raw_bucket: str, time_scale: float = 1.0) -> EndpointSettings:
        """The stage's endpoint: instance count, deployment policy, rollback alarms, data capture."""
        serving = stage.serving
        return cls(
            instances=serving.initial_instance_count,
            policy=serving.deployment,
            alarms=rollback_alarms(stage),
            capture=CaptureSettings(
                destination_uri=f"s3://{raw_bucket}/{CAPTURE_PREFIX.rstrip('/')}",
                sampling_percent=serving.capture_sampling_percent,
            ),
            time_scale=time_scale,
        )

    def scaled(self, seconds: float) -> float:
        return seconds / self.time_scale

    @property
    def alarm_period(self) -> float | None:
        """The alarms' period in local seconds (scaled); None without alarms."""
        return self.scaled(self.alarms[0].period_seconds) if self.alarms else None

    def deployment_config(self) -> dict[str, Any]:
        """``DeploymentConfig`` as UpdateEndpoint takes it (and DescribeEndpoint shows it)."""
        policy = self.policy
        routing: dict[str, Any] = {
            "Type": {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}[policy.traffic],
            "WaitIntervalInSeconds": policy.wait_seconds,
        }
        if policy.traffic == "canary":
            routing["CanarySize"] = {"Type": "INSTANCE_COUNT", "Value": policy.canary_instances}
        if policy.traffic == "linear":
            routing["LinearStepSize"] = {"Type": "INSTANCE_COUNT", "Value": policy.linear_step_instances}
        return {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": routing,
                "TerminationWaitInSeconds": policy.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": policy.maximum_execution_timeout_seconds,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a.name} for a in self.alarms]},
        }


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


@dataclass
class TimelineEntry:
    seconds: float  # since the deployment started (local, unscaled seconds)
    time: str
    event: str
    status: str
    shares: dict[str, float]  # "blue"/"green" -> share of new requests
    detail: str
    period: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Seconds": round(self.seconds, 3),
            "Time": self.time,
            "Event": self.event,
            "EndpointStatus": self.status,
            "Shares": dict(self.shares),
            "Detail": self.detail,
        }
        if self.period is not None:
            out["Period"] = self.period
        return out


@dataclass
class DeploymentRecord:
    """One deployment: what was decided, every step with the traffic shares, the alarms, the outcome."""

    id: str
    action: str
    decision: str
    target: ModelPackage
    previous: ModelPackage
    config: dict[str, Any]
    time_scale: float
    started: dt.datetime
    started_monotonic: float
    status: str = "InProgress"  # then Succeeded or Failed
    reason: str = ""
    finished: dt.datetime | None = None
    alarm: dict[str, Any] | None = None  # the alarm that stopped the deployment, with its datapoints
    timeline: list[TimelineEntry] = field(default_factory=list)
    event: dict[str, Any] | None = None  # the published detail (rookery_contracts.deployment.event_detail)

    def entry(self, event: str, status: str, shares: Mapping[str, float], detail: str, **extra: Any) -> None:
        self.timeline.append(
            TimelineEntry(
                seconds=time.monotonic() - self.started_monotonic,
                time=_iso(now()),
                event=event,
                status=status,
                shares=dict(shares),
                detail=detail,
                period=extra.get("period"),
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "DeploymentId": self.id,
            "Action": self.action,
            "Decision": self.decision,
            "Target": _package_json(self.target),
            "Previous": _package_json(self.previous),
            "DeploymentConfig": self.config,
            "TimeScale": self.time_scale,
            "StartTime": _iso(self.started),
            "EndTime": _iso(self.finished) if self.finished else None,
            "Status": self.status,
            "Reason": self.reason,
            "Alarm": self.alarm,
            "Timeline": [t.to_json() for t in self.timeline],
            "Event": self.event,
        }


def _package_json(package: ModelPackage) -> dict[str, Any]:
    return {"ModelPackageArn": package.arn, "ModelPackage": package.ref, "Version": package.version}


# -- the records other processes read --------------------------------------------------------------


def endpoint_record(home: LocalHome, name: str) -> dict[str, Any] | None:
    """The served endpoint's record (``endpoint.json``), or None when no live process serves it."""
    path = home.endpoints_dir / name / ENDPOINT_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid, started = record.get("Pid"), record.get("PidStartTime")
    if not isinstance(pid, int) or not lifetime.alive(pid, started if isinstance(started, int) else None):
        return None  # served by a process that is gone (its pid may since belong to another)
    return record


def monitored_package(home: LocalHome, endpoint: str, group: str) -> ModelPackage:
    """The version whose baseline judges ``endpoint``'s traffic: the one it serves while it runs (the
    Serving stack's deployer sets the baseline with the model it deploys), else ``group``'s latest
    Approved version."""
    record = endpoint_record(home, endpoint)
    served = record.get("ModelPackageArn") if record else None
    registry = LocalRegistry(home)
    return registry.get(str(served)) if served else registry.latest_approved(group)


def running_endpoints(home: LocalHome) -> list[dict[str, Any]]:
    """Every served endpoint's record, newest first."""
    if not home.endpoints_dir.is_dir():
        return []
    found = [endpoint_record(home, p.name) for p in sorted(home.endpoints_dir.iterdir()) if p.is_dir()]
    return sorted((r for r in found if r), key=lambda r: str(r.get("CreationTime")), reverse=True)


def find_endpoint(home: LocalHome, name: str | None = None) -> dict[str, Any]:
    """The record of running endpoint ``name`` (as DescribeEndpoint), or of the newest running one."""
    if name:
        record = endpoint_record(home, name)
        if record is None:
            running = ", ".join(str(r.get("EndpointName")) for r in running_endpoints(home)) or "none"
            raise EndpointNotFoundError(
                f"endpoint {name!r} is not running; start it with `rookery local serve --name {name}` "
                f"(running here: {running})"
            )
        return record
    running_now = running_endpoints(home)
    if not running_now:
        raise EndpointNotFoundError("no local endpoint is running; start one with `rookery local serve`")
    return running_now[0]


def deployment_records(home: LocalHome, name: str) -> list[dict[str, Any]]:
    """The finished deployments of endpoint ``name``, oldest first (kept after the endpoint stops)."""
    folder = home.endpoints_dir / name / DEPLOYMENTS_DIR
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(records, key=lambda r: str(r.get("StartTime")))


def _account_region(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) > 4 and parts[4].isdigit():
        return parts[4], parts[3]
    return "000000000000", "us-east-1"


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Whole or not at all: readers in other processes never see half a file."""
    write_whole(path, json.dumps(data, indent=2, default=str).encode())


@dataclass(frozen=True)
class Handled:
    """What became of one invocation: the fleet that took it and its answer, or the front end's error."""

    fleet: Fleet | None
    answer: ModelAnswer | None
    error: ServiceError | None
    received: dt.datetime

    @property
    def status(self) -> int:
        if self.answer is not None:
            return self.answer.status
        assert self.error is not None
        return self.error.status


class LocalEndpoint:
    """One endpoint on 127.0.0.1: its fleets, traffic, measurements, capture and deployments.

    A context manager: leaving it stops the front end, the model servers and the capture writer.
    """

    def __init__(
        self, home: LocalHome, name: str, images: ImageMap, settings: EndpointSettings, folder: Path
    ) -> None:
        self.home = home
        self.name = name
        self.images = images
        self.settings = settings
        self.folder = folder
        self.router = Router()
        self.measurements = Measurements()
        self.capture: CaptureWriter | None = None
        self.url = ""
        self.account = "000000000000"
        self.region = "us-east-1"
        self.created = now()
        self.modified = self.created
        self.status = EndpointStatus.CREATING
        self.failure_reason: str | None = None
        self.current: DeploymentRecord | None = None
        self.deployments: list[DeploymentRecord] = []
        self.decisions: list[dict[str, Any]] = []
        self.deploys_on_approval = False
        self._live: Fleet | None = None
        self._green: Fleet | None = None
        self._fleet_numbers = itertools.count(1)
        self._deployment_numbers = 0
        self._state = threading.RLock()
        self._deploying = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._front: FrontEnd | None = None
        self._on_change: list[Callable[[LocalEndpoint], None]] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        home: LocalHome,
        images: ImageMap,
        package: ModelPackage,
        *,
        name: str,
        port: int = 0,
        settings: EndpointSettings | None = None,
    ) -> LocalEndpoint:
        """Serve ``package`` as endpoint ``name`` on ``127.0.0.1:port`` (0: any free port)."""
        from emulators.sagemaker_runtime.responses import FrontEnd  # noqa: PLC0415 - responses imports this module

        if not _NAME.match(name):
            raise EndpointError(f"endpoint name {name!r} must be 1-63 letters, digits and hyphens")
        running = endpoint_record(home, name)
        if running is not None:
            raise EndpointError(
                f"endpoint {name!r} is already served at {running.get('Url')} by process "
                f"{running.get('Pid')}; stop it (Ctrl-C) or choose another --name"
            )
        folder = home.endpoints_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        endpoint = cls(home, name, images, settings or EndpointSettings(), folder)
        endpoint.account, endpoint.region = _account_region(package.arn)
        try:
            fleet = endpoint.start_fleet(package, images)
        except EndpointError as exc:
            raise EndpointError(f"endpoint {name!r} could not start: {exc}") from None
        endpoint._live = fleet
        endpoint.router.route({fleet: 1.0})
        try:
            endpoint._front = FrontEnd.listen(endpoint, port)
        except OSError as exc:
            fleet.stop()
            raise EndpointError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port"
            ) from None
        endpoint.url = endpoint._front.url
        capture = endpoint.settings.capture
        if capture is not None:
            endpoint.capture = CaptureWriter(
                home, capture, endpoint=name, variant=VARIANT_NAME, staging=folder / "capture-staging"
            )
            endpoint.capture.start()
        endpoint._set_status(EndpointStatus.IN_SERVICE)
        return endpoint

    def stop(self) -> None:
        """Stop serving: a running deployment is abandoned (traffic stays on the old fleet), then
        the front end, every model server and the capture writer stop; endpoint.json is removed."""
        if self._stopped.is_set():
            return
        self._stopping.set()
        with self._deploying:  # wait for a running deployment to give up
            pass
        if self._front is not None:
            self._front.close()
            self._front = None
        with self._state:
            fleets = [f for f in (self._live, self._green) if f is not None]
        for fleet in fleets:
            fleet.drain(timeout=5)
            fleet.stop()
        if self.capture is not None:
            self.capture.stop()
        with self._state:
            self._stopped.set()
            with contextlib.suppress(FileNotFoundError):
                (self.folder / ENDPOINT_FILE).unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    # -- what is served ----------------------------------------------------------------------------

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{self.name.lower()}"

    @property
    def live(self) -> Fleet:
        with self._state:
            assert self._live is not None, "the endpoint has no fleet (it did not start)"
            return self._live

    @property
    def package(self) -> ModelPackage:
        """The model package the endpoint serves (the old one until a deployment completes)."""
        return self.live.package

    @property
    def model(self) -> ServeProcess:
        """The live fleet's model server."""
        return self.live.server

    def on_change(self, listener: Callable[[LocalEndpoint], None]) -> None:
        """Call ``listener(endpoint)`` after every state change (status, traffic, a timeline entry)."""
        self._on_change.append(listener)

    # -- invocations -------------------------------------------------------------------------------

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> Handled:
        """Route one invocation to a fleet by the current traffic shares and wait for the container."""
        received = now()
        fleet = self.router.acquire()
        if fleet is None:
            return Handled(
                None, None, service_unavailable(f"endpoint {self.name} has no fleet in service"), received
            )
        try:
            answer = fleet.invoke(body, headers)
        except OSError as exc:
            error = internal_failure(f"the model container is not answering ({exc}); see {fleet.log_path}")
            return Handled(fleet, None, error, received)
        finally:
            fleet.end()
        return Handled(fleet, answer, None, received)

    def capture_answer(
        self, handled: Handled, *, request: bytes, request_type: str | None, inference_id: str | None
    ) -> None:
        """Capture the invocation if it is sampled. Called before the answer is written: the capture
        queue then holds every invocation a caller has its answer for, so a caller can close a
        capture window (``CaptureWriter.roll``) right after its last answer."""
        answer = handled.answer
        if (
            self.capture is not None
            and answer is not None
            and answer.status == 200
            and self.capture.sampled()
        ):
            self.capture.offer(
                Captured(
                    request_type=request_type,
                    request=request,
                    response_type=answer.headers.get("content-type"),
                    response=answer.body,
                    inference_time=handled.received,
                    inference_id=inference_id,
                )
            )

    def completed(self, handled: Handled, *, seconds: float) -> None:
        """Record the finished invocation (the alarms' measurements), its answer written."""
        model = handled.answer.seconds if handled.answer is not None else None
        self.measurements.record(
            Invocation(
                finished=time.monotonic(),
                fleet=handled.fleet.id if handled.fleet is not None else None,
                status=handled.status,
                model_us=None if model is None else model * 1e6,
                overhead_us=max(0.0, seconds - (model or 0.0)) * 1e6,
            )
        )

    # -- deployments -------------------------------------------------------------------------------

    def deploy(
        self,
        package: ModelPackage,
        *,
        images: ImageMap | None = None,
        decision: Decision | None = None,
        deployment_id: str | None = None,
    ) -> DeploymentRecord:
        """Replace the live model package with ``package`` by a blue/green deployment (blocking).

        The stage's policy routes traffic step by step while the rollback alarms watch; the record
        says how it ended. One deployment at a time: DeploymentInProgressError while one runs.
        """
        from emulators.sagemaker_runtime.deployment import BlueGreenDeployment  # noqa: PLC0415 - it imports this module

        if not self._deploying.acquire(blocking=False):
            running = self.current.id if self.current else "one"
            raise DeploymentInProgressError(
                f"endpoint {self.name} is being updated (deployment {running}); wait for it to end"
            )
        try:
            if self._stopping.is_set():
                raise EndpointError(f"endpoint {self.name} is stopping; no deployment starts")
            live = self.package
            chosen = decision or Decision(
                Action.DEPLOY,
                PackageVersion(package.arn, package.version, package.approval_status),
                PackageVersion(live.arn, live.version, live.approval_status),
                f"deploy {package.ref} (requested directly)",
            )
            chosen_id = deployment_id or self.new_deployment_id(package)
            return BlueGreenDeployment(self, package, images or self.images, chosen, chosen_id).run()
        finally:
            self._deploying.release()

    def new_deployment_id(self, package: ModelPackage) -> str:
        """A deployment id: when, to which version, and how many deployments this endpoint has had."""
        with self._state:
            self._deployment_numbers += 1
            return f"{now():%Y%m%dT%H%M%S}-v{package.version}-{self._deployment_numbers}"

    @property
    def deploying(self) -> bool:
        return self._deploying.locked()

    def note_deployer(self, active: bool) -> None:
        """Whether a deployer keeps this endpoint on the group's highest approved version."""
        with self._state:
            self.deploys_on_approval = active
        self._changed()

    def note_decision(self, decision: dict[str, Any]) -> None:
        """Keep one decision of the deployer (the last MAX_DECISIONS are in endpoint.json)."""
        with self._state:
            self.decisions = [*self.decisions, decision][-MAX_DECISIONS:]
            self._changed()

    # -- state changes (the deployment drives these) -----------------------------------------------

    def start_fleet(self, package: ModelPackage, images: ImageMap) -> Fleet:
        """Start a fleet for ``package`` (not yet routed); EndpointError when it is not healthy."""
        fleet_id = f"fleet-{next(self._fleet_numbers)}"
        return Fleet.start(
            self.home,
            images,
            package,
            fleet_id=fleet_id,
            folder=self.folder / "fleets" / fleet_id,
            instances=self.settings.instances,
        )

    def begin(self, record: DeploymentRecord) -> None:
        """A deployment starts: it is the current one, and the last failure is history."""
        with self._state:
            self.current = record
            self.failure_reason = None

    def stage_fleet(self, fleet: Fleet | None) -> None:
        """The new fleet beside the live one while a deployment runs (None when it is gone)."""
        with self._state:
            self._green = fleet
        self._changed()

    def promote(self, fleet: Fleet) -> None:
        """``fleet`` becomes the live fleet (the old one has been retired)."""
        with self._state:
            self._live, self._green = fleet, None
        self._changed()

    def log(
        self,
        record: DeploymentRecord,
        event: str,
        detail: str,
        shares: Mapping[str, float],
        *,
        status: EndpointStatus | None = None,
        period: dict[str, Any] | None = None,
    ) -> None:
        """Add a timeline entry to ``record`` (with the endpoint's status, changed first if given)."""
        with self._state:
            if status is not None:
                self.status = status
            record.entry(event, str(self.status), shares, detail, period=period)
        self._changed()

    def finish(
        self,
        record: DeploymentRecord,
        *,
        status: str,
        reason: str,
        finished: dt.datetime,
        event: dict[str, Any],
    ) -> None:
        """End the deployment with its outcome and keep it: in the endpoint's history and in
        ``deployments/<id>.json``. The outcome is set under the same lock that keeps the record, so
        no reader (``follow`` in another thread or process) sees a finished deployment the endpoint
        does not hold yet."""
        with self._state:
            record.status, record.reason, record.finished, record.event = status, reason, finished, event
            if record.status != "Succeeded":
                self.failure_reason = record.reason
            self.deployments.append(record)
            self.current = None
            folder = self.folder / DEPLOYMENTS_DIR
            folder.mkdir(parents=True, exist_ok=True)
            _write_json(folder / f"{record.id}.json", record.to_json())
        self._changed()

    def _set_status(self, status: EndpointStatus) -> None:
        with self._state:
            self.status = status
        self._changed()

    def _changed(self) -> None:
        with self._state:
            self.modified = now()
            if self.url and not self._stopped.is_set():
                _write_json(self.folder / ENDPOINT_FILE, self.describe())
        for listener in self._on_change:
            listener(self)

    def describe(self) -> dict[str, Any]:
        """``DescribeEndpoint``'s answer, plus the local endpoint's own fields (URL, process, deployments)."""
        with self._state:
            live = self._live
            green = self._green
            shares = self.router.shares()
            out: dict[str, Any] = {
                "EndpointName": self.name,
                "EndpointArn": self.arn,
                "EndpointConfigName": f"{self.name}-{live.id}" if live else self.name,
                "ProductionVariants": [self._variant(live)] if live else [],
                "EndpointStatus": str(self.status),
                "CreationTime": _iso(self.created),
                "LastModifiedTime": _iso(self.modified),
                "LastDeploymentConfig": self.settings.deployment_config(),
            }
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            capture = self.settings.capture
            if capture is not None:
                out["DataCaptureConfig"] = {
                    "EnableCapture": True,
                    "CaptureStatus": "Started",
                    "CurrentSamplingPercentage": capture.sampling_percent,
                    "DestinationS3Uri": capture.destination_uri,
                }
            if green is not None and self.current is not None:
                out["PendingDeploymentSummary"] = {
                    "EndpointConfigName": f"{self.name}-{green.id}",
                    "ProductionVariants": [self._variant(green)],
                    "StartTime": _iso(self.current.started),
                }
            # Local only: where and what it serves, the fleets' traffic, the deployer's decisions.
            out.update(
                {
                    "Url": self.url,
                    "Pid": os.getpid(),
                    "PidStartTime": lifetime.start_time(os.getpid()),
                    "ModelPackageArn": live.package.arn if live else None,
                    "ModelPackage": live.package.ref if live else None,
                    "ModelPackageGroupName": live.package.group if live else None,
                    "TimeScale": self.settings.time_scale,
                    "DeployOnApproval": self.deploys_on_approval,
                    "Fleets": [
                        {
                            "Fleet": fleet.id,
                            "Role": role,
                            "ModelPackage": fleet.package.ref,
                            "ModelPackageArn": fleet.package.arn,
                            "TrafficShare": shares.get(fleet.id, 0.0),
                            "InFlight": fleet.inflight,
                            "ModelUrl": fleet.url,
                            "Log": str(fleet.log_path),
                        }
                        for role, fleet in (("blue", live), ("green", green))
                        if fleet is not None
                    ],
                    "CurrentDeployment": self.current.to_json() if self.current else None,
                    "LastDeployment": self.deployments[-1].to_json() if self.deployments else None,
                    "Decisions": list(self.decisions),
                }
            )
            return out

    def _variant(self, fleet: Fleet) -> dict[str, Any]:
        image = str(fleet.package.inference_spec.get("image"))
        return {
            "VariantName": VARIANT_NAME,
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image}],
            "CurrentWeight": 1.0,
            "DesiredWeight": 1.0,
            "CurrentInstanceCount": fleet.instances,
            "DesiredInstanceCount": fleet.instances,
        }
