"""The demo's deployments: the approved version goes live on a local endpoint with the stage's serving
settings, a second version is swapped in under steady traffic, and a broken candidate is stopped by
the rollback alarms.

Every change goes the way a reviewer's does: the model package's status is written to the registry,
the endpoint's deployer (``LocalDeployer``, deciding with the AWS deployer's own function) notices
it as EventBridge would deliver it, and the demo follows the outcome with
``emulators.sagemaker_runtime.deployer.follow``, as ``rookery local approve`` does. The first
version goes live as the Serving stack's endpoint is created: the same decision, taken with no
endpoint yet, names the version the endpoint starts with.

:func:`summarize` turns one deployment's record and what the clients saw (``traffic.Call``) into a
:class:`DeploymentRun`: traffic shares over time, requests, failures and latency per interval, and
the outcome with the alarm that stopped it. It is pure, so the report's facts are tested on
records written by hand as well as on real runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.sagemaker.models import LocalRegistry
from emulators.sagemaker_runtime import DeploymentRecord, EndpointSettings, LocalDeployer, LocalEndpoint
from emulators.sagemaker_runtime.deployer import Decided, Finished, Step, follow, package_written
from emulators.sagemaker_runtime.deployment import describe_policy
from emulators.sagemaker_runtime.metrics import percentile
from rookery.demo.report import Plot
from rookery.demo.traffic import Call, SteadyTraffic
from rookery_contracts.deployment import PackageVersion, decide
from stage.alarms import MICROSECONDS_PER_MILLISECOND, RollbackAlarm, rollback_alarms
from stage.model import Stage

# The stage's waits run this many times faster here (a local-only convenience the report states):
# the dev stage's 300 s bake takes 3 s, its 60 s alarm period 0.6 s. Latencies and thresholds are
# never scaled.
TIME_SCALE: Final = 100.0
CLIENTS: Final = 2  # boto3 clients calling the endpoint back to back during a change
STEADY_SECONDS: Final = 1.0  # traffic before the approval: the steady state the change is compared with
STEADY_CALLS: Final = 20  # and at least this many calls in it
SETTLE_SECONDS: Final = 1.0  # traffic after the deployment ended
FOLLOW_TIMEOUT_SECONDS: Final = 600.0

Kind = Literal["swap", "rollback"]


class DeploymentFailed(RuntimeError):  # noqa: N818 - reads as what happened
    """A deployment of the demo did not do what it shows; the message says what happened instead."""


# --- The endpoint and its deployer ------------------------------------------------------------------


@dataclass
class ServedEndpoint:
    """A local endpoint with the stage's serving settings and its deploy-on-approval deployer."""

    endpoint: LocalEndpoint
    deployer: LocalDeployer
    registry: LocalRegistry
    first_decision: str  # why the endpoint started with the version it serves

    @property
    def settings(self) -> EndpointSettings:
        return self.endpoint.settings

    def close(self) -> None:
        """Stop the endpoint first (a deployment in progress is abandoned), then the deployer."""
        self.endpoint.stop()
        self.deployer.stop()


def serve_approved(
    home: LocalHome, stage: Stage, images: ImageMap, *, group: str, name: str, raw_bucket: str
) -> ServedEndpoint:
    """Start endpoint ``name`` on the group's highest approved version, as the Serving stack creates
    its endpoint once a version is approved, and start deploying on approval."""
    registry = LocalRegistry(home)
    packages = registry.packages(group)
    decision = decide([PackageVersion(p.arn, p.version, p.approval_status) for p in packages], None)
    if decision.target is None:
        raise DeploymentFailed(f"nothing to deploy from {group}: {decision.reason}")
    target = next(p for p in packages if p.arn == decision.target.arn)
    settings = EndpointSettings.from_stage(stage, raw_bucket=raw_bucket, time_scale=TIME_SCALE)
    endpoint = LocalEndpoint.start(home, images, target, name=name, settings=settings)
    deployer = LocalDeployer(endpoint, registry, group)
    deployer.start()
    return ServedEndpoint(endpoint, deployer, registry, decision.reason)


@dataclass(frozen=True)
class Change:
    """A status written to the registry and what the deployer did about it."""

    ref: str
    status: str
    written_at: float  # time.monotonic() when the status was written
    decision: Mapping[str, Any]  # the deployer's decision record (Action, Reason, DeploymentId, ...)
    record: DeploymentRecord | None  # the deployment it started, when it started one


def change_status(
    served: ServedEndpoint,
    ref: str,
    status: str,
    *,
    description: str,
    on_entry: Callable[[Mapping[str, Any]], None] | None = None,
) -> Change:
    """Write ``status`` for ``ref`` and follow the deployer to its outcome (``rookery local approve``)."""
    endpoint = served.endpoint
    written_at = time.monotonic()
    served.registry.set_status(ref, status, description=description)
    package, written = package_written(served.registry, ref)
    decision: Mapping[str, Any] | None = None
    try:
        for item in follow(
            endpoint.home, endpoint.name, package.version, written, timeout=FOLLOW_TIMEOUT_SECONDS
        ):
            if isinstance(item, Decided):
                decision = item.decision
            elif isinstance(item, Step) and on_entry is not None:
                on_entry(item.entry)
            elif isinstance(item, Finished):
                break
    except TimeoutError as exc:
        raise DeploymentFailed(f"{ref} {status}: {exc}") from None
    assert decision is not None  # follow yields the decision before anything else ends it
    deployment_id = decision.get("DeploymentId")
    record = next((d for d in endpoint.deployments if d.id == deployment_id), None) if deployment_id else None
    return Change(ref, status, written_at, decision, record)


def under_traffic(
    served: ServedEndpoint, body: bytes, *, content_type: str, region: str, change: Callable[[], Change]
) -> tuple[Change, list[Call]]:
    """``change()`` while boto3 clients call the endpoint: from a steady state before it to a short
    while after the deployment ended. Every call the clients made, and the change."""
    endpoint = served.endpoint
    with SteadyTraffic(
        endpoint.url, endpoint.name, body, content_type=content_type, clients=CLIENTS, region=region
    ) as traffic:
        time.sleep(STEADY_SECONDS)
        traffic.wait_for(STEADY_CALLS, timeout=60)
        done = change()
        time.sleep(SETTLE_SECONDS)
    return done, traffic.calls


# --- What one deployment looked like -----------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """The calls that started within one interval: how many, how many failed, their latency."""

    start: float  # seconds after the approval
    requests: int
    failures: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class ShareStep:
    """The traffic shares the endpoint routes new requests by, from ``seconds`` on."""

    seconds: float
    blue: float
    green: float


@dataclass(frozen=True)
class MeasuredShare:
    """The green fleet's share of one alarm period's invocations, as the endpoint counted them."""

    seconds: float  # the middle of the period, after the approval
    green: float
    invocations: int


@dataclass(frozen=True)
class Span:
    """A stretch of the deployment: the new fleet starting, a bake, the termination wait, a rollback."""

    start: float
    end: float
    what: str  # a short label for the plot
    stage_seconds: int | None  # how long it lasts at the stage's timing (None: not a configured wait)


# Where each stretch of a deployment starts, the label it gets, and whether it is a configured wait.
_SPANS: Final = {
    "DeploymentStarted": ("new fleet starts", None),
    "Baking": ("bake", "WaitIntervalInSeconds"),
    "TerminationWait": ("termination wait", "TerminationWaitInSeconds"),
    "TrafficRestored": ("rolling back", None),
}
# The events that end a stretch (else the deployment's last event does).
_SPAN_ENDS: Final = (
    "NewFleetHealthy",
    "NewFleetUnhealthy",
    "TrafficShifted",
    "TerminationWait",
    "TrafficRestored",
)


def spans(entries: Sequence[Mapping[str, Any]], config: Mapping[str, Any], offset: float) -> tuple[Span, ...]:
    """The deployment's stretches from its timeline: each runs from its event to the next event that
    starts another stretch or moves traffic (``offset``: the deployment's start after the approval)."""
    policy = config.get("BlueGreenUpdatePolicy") or {}
    routing = policy.get("TrafficRoutingConfiguration") or {}
    waits = {
        "WaitIntervalInSeconds": routing.get("WaitIntervalInSeconds"),
        "TerminationWaitInSeconds": policy.get("TerminationWaitInSeconds"),
    }
    out: list[Span] = []
    bakes = 0
    for number, entry in enumerate(entries):
        event = str(entry.get("Event"))
        if event not in _SPANS:
            continue
        what, wait = _SPANS[event]
        if event == "Baking":
            bakes += 1
            what = f"bake {bakes}"
        following = [e for e in entries[number + 1 :] if e.get("Event") in _SPAN_ENDS]
        end = following[0] if following else entries[-1]
        seconds = waits.get(wait) if wait else None
        out.append(
            Span(
                start=offset + float(entry.get("Seconds", 0.0)),
                end=offset + float(end.get("Seconds", 0.0)),
                what=what,
                stage_seconds=int(seconds) if isinstance(seconds, int | float) else None,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class TimelineRow:
    seconds: float  # after the approval
    event: str
    status: str
    shares: str
    detail: str


@dataclass(frozen=True)
class AlarmOutcome:
    """The alarm that stopped a deployment: its datapoints against its threshold."""

    name: str
    metric: str
    statistic: str
    threshold: str
    datapoints: tuple[str, ...]  # oldest first, in the alarm's unit
    breaching: int
    considered: int
    datapoints_to_alarm: int


@dataclass(frozen=True)
class DeploymentRun:
    """One deployment as the report shows it (times in seconds after the approval, on this machine)."""

    kind: Kind
    deployment_id: str
    previous: str  # the version serving when it started (blue)
    target: str  # the version it deployed (green)
    decision: str
    status: str  # Succeeded | Failed
    reason: str
    serving_after: str  # the version the endpoint served when it ended
    status_after: str  # the endpoint's status then
    requests: int  # every call of the clients, steady state included
    failures: int
    steady_p99_ms: float | None  # before the approval
    change_p99_ms: float | None  # from the approval to the end of the deployment
    started: float  # the deployment's start (the deployer noticed the approval)
    traffic_shifted: float | None  # the first traffic step
    full_traffic: float | None  # all traffic on green (swap)
    restored: float | None  # all traffic back on blue (rollback)
    ended: float
    canary_requests: int  # from the first traffic step until traffic was restored or fully shifted
    canary_failures: int
    failures_after: int  # calls that started after the deployment's last traffic change
    alarm: AlarmOutcome | None
    shares: tuple[ShareStep, ...]
    measured: tuple[MeasuredShare, ...]
    intervals: tuple[Interval, ...]
    interval_seconds: float
    timeline: tuple[TimelineRow, ...]
    periods: tuple[TimelineRow, ...]  # the alarm evaluations, one per period
    spans: tuple[Span, ...] = ()
    plot: Plot | None = None

    @property
    def canary_failure_share(self) -> float | None:
        return self.canary_failures / self.canary_requests if self.canary_requests else None

    @property
    def canary_share(self) -> float | None:
        """The green fleet's share of the traffic after the first step."""
        return next((s.green for s in self.shares if s.green > 0), None)


def _version(package: Mapping[str, Any] | None) -> str:
    return str((package or {}).get("ModelPackage", "-"))


def _shares_text(shares: Mapping[str, float]) -> str:
    return " ".join(f"{role} {share:.0%}" for role, share in shares.items())


def _p(calls: Sequence[Call], p: float) -> float | None:
    return 1000 * percentile([c.seconds for c in calls], p) if calls else None


def intervals(calls: Sequence[Call], *, origin: float, width: float) -> tuple[Interval, ...]:
    """The calls binned by start time into intervals of ``width`` seconds (times after ``origin``)."""
    if not calls:
        return ()
    first = min(c.started for c in calls) - origin
    start = width * (first // width)
    bins: dict[int, list[Call]] = {}
    for call in calls:
        bins.setdefault(int((call.started - origin - start) // width), []).append(call)
    out = []
    for index in range(max(bins) + 1):
        members = bins.get(index, [])
        out.append(
            Interval(
                start=start + index * width,
                requests=len(members),
                failures=sum(not c.ok for c in members),
                p50_ms=_p(members, 50),
                p99_ms=_p(members, 99),
            )
        )
    return tuple(out)


def _alarm_value(alarm: RollbackAlarm | None, metric: str, value: float | None) -> str:
    if value is None:
        return "missing"
    if (alarm.purpose if alarm else None) == "errors" or metric == "Invocation5XXErrors":
        return f"{value:.1%}"
    return f"{value / MICROSECONDS_PER_MILLISECOND:.1f} ms"


def alarm_outcome(raw: Mapping[str, Any], alarms: Sequence[RollbackAlarm]) -> AlarmOutcome:
    """The deployment record's ``Alarm`` in the units people read (a rate in %, latencies in ms)."""
    name = str(raw.get("AlarmName"))
    metric = str(raw.get("MetricName"))
    known = next((a for a in alarms if a.name == name), None)
    return AlarmOutcome(
        name=name,
        metric=metric,
        statistic=str(raw.get("Statistic")),
        threshold=_alarm_value(known, metric, float(raw["Threshold"])),
        datapoints=tuple(_alarm_value(known, metric, v) for v in raw.get("Datapoints") or []),
        breaching=int(raw.get("Breaching") or 0),
        considered=int(raw.get("Of") or 0),
        datapoints_to_alarm=int(raw.get("DatapointsToAlarm") or 0),
    )


def summarize(
    kind: Kind,
    record: Mapping[str, Any],
    calls: Sequence[Call],
    *,
    approved_at: float,
    started_at: float,
    alarm_period: float,
    alarms: Sequence[RollbackAlarm],
    serving_after: str,
    status_after: str,
) -> DeploymentRun:
    """One deployment from its record (``DeploymentRecord.to_json()``) and the clients' calls.

    ``approved_at`` is when the approval was written and ``started_at`` when the deployment started
    (both ``time.monotonic()``); ``alarm_period`` is the alarms' period in local seconds.
    """
    offset = started_at - approved_at
    entries = list(record.get("Timeline") or [])

    def at(entry: Mapping[str, Any]) -> float:
        return offset + float(entry.get("Seconds", 0.0))

    def first(event: str) -> float | None:
        return next((at(e) for e in entries if e.get("Event") == event), None)

    shifted = first("TrafficShifted")
    full = first("TerminationWait")
    restored = first("TrafficRestored")
    ended = at(entries[-1]) if entries else offset
    window_start = min((c.started - approved_at for c in calls), default=0.0)
    shares = [ShareStep(window_start, 1.0, 0.0)]
    for entry in entries:
        routed = entry.get("Shares") or {}
        step = ShareStep(at(entry), float(routed.get("blue", 0.0)), float(routed.get("green", 0.0)))
        if (step.blue, step.green) != (shares[-1].blue, shares[-1].green):
            shares.append(step)
    measured = []
    for entry in entries:
        period = entry.get("Period")
        if entry.get("Event") != "AlarmsEvaluated" or not period or shifted is None:
            continue
        counts = period.get("Invocations") or {}
        total = sum(int(n) for n in counts.values())
        if total:
            middle = shifted + float(period.get("Start", 0.0)) + alarm_period / 2
            measured.append(MeasuredShare(middle, int(counts.get("green", 0)) / total, total))
    relative = [(c.started - approved_at, c) for c in calls]
    canary_end = restored if restored is not None else full
    canary = [c for t, c in relative if shifted is not None and shifted <= t < (canary_end or ended)]
    last_change = max((s.seconds for s in shares), default=window_start)
    rows = [
        TimelineRow(
            seconds=at(e),
            event=str(e.get("Event")),
            status=str(e.get("EndpointStatus")),
            shares=_shares_text(e.get("Shares") or {}),
            detail=str(e.get("Detail")),
        )
        for e in entries
    ]
    raw_alarm = record.get("Alarm")
    return DeploymentRun(
        kind=kind,
        deployment_id=str(record.get("DeploymentId")),
        previous=_version(record.get("Previous")),
        target=_version(record.get("Target")),
        decision=str(record.get("Decision")),
        status=str(record.get("Status")),
        reason=str(record.get("Reason")),
        serving_after=serving_after,
        status_after=status_after,
        requests=len(calls),
        failures=sum(not c.ok for c in calls),
        steady_p99_ms=_p([c for t, c in relative if t < 0], 99),
        change_p99_ms=_p([c for t, c in relative if 0 <= t < ended], 99),
        started=offset,
        traffic_shifted=shifted,
        full_traffic=full,
        restored=restored,
        ended=ended,
        canary_requests=len(canary),
        canary_failures=sum(not c.ok for c in canary),
        failures_after=sum(not c.ok for t, c in relative if t >= last_change),
        alarm=alarm_outcome(raw_alarm, alarms) if isinstance(raw_alarm, Mapping) else None,
        shares=tuple(shares),
        measured=tuple(measured),
        intervals=intervals(calls, origin=approved_at, width=alarm_period),
        interval_seconds=alarm_period,
        timeline=tuple(r for r in rows if r.event != "AlarmsEvaluated"),
        periods=tuple(r for r in rows if r.event == "AlarmsEvaluated"),
        spans=spans(entries, record.get("DeploymentConfig") or {}, offset),
    )


# --- The stage's timing, real and local -------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    what: str
    seconds: float  # at the stage's timing, as SageMaker runs it
    local: float  # as it ran here


@dataclass(frozen=True)
class AlarmRow:
    name: str
    metric: str
    threshold: str
    rule: str


@dataclass
class DeploymentStory:
    """What the demo's deployment phases did, for the report (a phase that did not run leaves None)."""

    endpoint_name: str
    endpoint_url: str
    instances: int
    policy: str
    time_scale: float
    waits: tuple[Wait, ...]
    alarms: tuple[AlarmRow, ...]
    first_version: str
    first_decision: str
    capture: str | None
    swap_wait_seconds: int  # every wait of a swap at the stage's timing (bakes and termination wait)
    alarm_seconds: int  # the earliest an alarm can fire after traffic first shifts, at the stage's timing
    swap: DeploymentRun | None = None
    rescored: str | None = None  # the test split scored again after the swap
    rollback: DeploymentRun | None = None
    rejected: str | None = None  # the deployer's decision after the broken version was rejected
    clients: int = CLIENTS


def story(served: ServedEndpoint, stage: Stage) -> DeploymentStory:
    """The endpoint's settings as the report states them, with the stage's real waits."""
    settings = served.settings
    policy = settings.policy
    alarms = settings.alarms
    steps = policy.steps(settings.instances)
    bake, termination = policy.wait_seconds, policy.termination_wait_seconds
    waits = [
        Wait(f"bake after each of the {steps} traffic steps", bake, settings.scaled(bake)),
        Wait("termination wait", termination, settings.scaled(termination)),
    ]
    if alarms:
        period = alarms[0].period_seconds
        waits.append(Wait("alarm period", period, settings.scaled(period)))
    alarm_seconds = min((a.datapoints_to_alarm * a.period_seconds for a in alarms), default=0)
    endpoint = served.endpoint
    capture = endpoint.capture
    return DeploymentStory(
        endpoint_name=endpoint.name,
        endpoint_url=endpoint.url,
        instances=settings.instances,
        policy=describe_policy(policy, settings.instances),
        time_scale=settings.time_scale,
        waits=tuple(waits),
        alarms=tuple(
            AlarmRow(
                name=a.name,
                metric=f"{a.metric} {a.statistic}",
                threshold=_alarm_value(a, a.metric, a.threshold),
                rule=f"{a.datapoints_to_alarm} of {a.evaluation_periods} periods of {a.period_seconds} s",
            )
            for a in rollback_alarms(stage)
        ),
        first_version=endpoint.package.ref,
        first_decision=served.first_decision,
        capture=None if capture is None else f"{capture.settings.sampling_percent}% to {capture.destination}",
        swap_wait_seconds=policy.waiting_seconds(settings.instances),
        alarm_seconds=alarm_seconds,
    )


def outcome_of(kind: Kind, served: ServedEndpoint, done: Change, calls: Sequence[Call]) -> DeploymentRun:
    """The run of ``done``'s deployment (DeploymentFailed when the change started none)."""
    record = done.record
    if record is None:
        raise DeploymentFailed(
            f"{done.ref} {done.status} started no deployment: {done.decision.get('Action')}: "
            f"{done.decision.get('Reason')}"
        )
    endpoint = served.endpoint
    return summarize(
        kind,
        record.to_json(),
        calls,
        approved_at=done.written_at,
        started_at=record.started_monotonic,
        alarm_period=served.settings.alarm_period or 1.0,
        alarms=served.settings.alarms,
        serving_after=endpoint.package.ref,
        status_after=str(endpoint.status),
    )
