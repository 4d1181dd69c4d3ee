"""A blue/green deployment onto a running local endpoint, as SageMaker runs one with auto-rollback.

1. The new (green) fleet starts and must pass its health check (``GET /ping``); if it does not,
   the deployment fails before any traffic moves.
2. Traffic shifts in the policy's steps (canary: the canary's instances, then the rest; linear: a
   step of instances at a time; all at once: everything), and after each step the deployment bakes
   for ``wait_seconds`` while the rollback alarms are evaluated on the endpoint's own measurements,
   period by period.
3. After the last bake and the termination wait, the old (blue) fleet is drained and stopped.

When an alarm fires (or the execution timeout passes, or the endpoint is stopping), all traffic goes
back to blue at once (``RollingBack``), green is stopped once its requests in flight are answered,
and the endpoint is ``InService`` on the old package; the outcome names the alarm and the datapoints
that breached. Success is decided by ``rookery_contracts.deployment.verify``, as the AWS deployer
decides it: the endpoint must be InService on the requested package.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulators.core.errors import EndpointError
from emulators.core.images import ImageMap
from emulators.sagemaker.models import ModelPackage, now
from emulators.sagemaker_runtime.fleets import Fleet
from emulators.sagemaker_runtime.metrics import AlarmState, AlarmWatch, Period
from emulators.sagemaker_runtime.models import DeploymentRecord, EndpointStatus, LocalEndpoint
from rookery_contracts.deployment import Decision, Status, UpdateResult, event_detail, verify
from stage.serving import DeploymentPolicy


def traffic_steps(policy: DeploymentPolicy, instances: int) -> tuple[float, ...]:
    """The green fleet's share of traffic after each step (the last is always 1.0)."""
    if policy.traffic == "canary":
        return (min(1.0, policy.first_share(instances)), 1.0)
    if policy.traffic == "linear":
        step = policy.linear_step_instances
        return tuple(min(1.0, k * step / instances) for k in range(1, policy.steps(instances) + 1))
    return (1.0,)


def describe_policy(policy: DeploymentPolicy, instances: int) -> str:
    steps = ", ".join(f"{share:.0%}" for share in traffic_steps(policy, instances))
    kind = {
        "canary": f"canary of {policy.canary_instances} of {instances} instance(s)",
        "linear": f"linear, {policy.linear_step_instances} of {instances} instance(s) a step",
        "all_at_once": "all at once",
    }[policy.traffic]
    return (
        f"blue/green {kind}: green takes {steps} of traffic, baking {policy.wait_seconds} s after each step; "
        f"termination wait {policy.termination_wait_seconds} s"
    )


def describe_state(state: AlarmState) -> str:
    alarm = state.alarm
    value = "no data" if state.value is None else f"{_unit(alarm.metric, state.value)}"
    verdict = "ALARM" if state.firing else "OK"
    return (
        f"{alarm.name} {verdict} ({alarm.metric} {alarm.statistic} {value}, threshold "
        f"{_unit(alarm.metric, alarm.threshold)}; {state.breaching} of the last {state.considered} breach, "
        f"{alarm.datapoints_to_alarm} to alarm)"
    )


def _unit(metric: str, value: float) -> str:
    if metric == "Invocation5XXErrors":
        return f"{value:.1%}"
    return f"{value / 1000:.1f} ms"


def _datapoints(state: AlarmState) -> list[str]:
    return ["missing" if v is None else _unit(state.alarm.metric, v) for v in state.recent]


@dataclass
class _Stop:
    """Why a bake ended early."""

    reason: str
    alarm: AlarmState | None = None


class BlueGreenDeployment:
    """One run of the procedure above; the endpoint serializes runs (one deployment at a time)."""

    def __init__(
        self,
        endpoint: LocalEndpoint,
        target: ModelPackage,
        images: ImageMap,
        decision: Decision,
        deployment_id: str,
    ) -> None:
        self.endpoint = endpoint
        self.target = target
        self.images = images
        self.decision = decision
        self.settings = endpoint.settings
        self.blue = endpoint.live
        self.green: Fleet | None = None
        started = now()
        self.record = DeploymentRecord(
            id=deployment_id,
            action=str(decision.action),
            decision=decision.reason,
            target=target,
            previous=self.blue.package,
            config=self.settings.deployment_config(),
            time_scale=self.settings.time_scale,
            started=started,
            started_monotonic=time.monotonic(),
        )
        self.deadline = time.monotonic() + self.settings.scaled(
            self.settings.policy.maximum_execution_timeout_seconds
        )
        self.watch: AlarmWatch | None = None

    # -- the procedure -----------------------------------------------------------------------------

    def run(self) -> DeploymentRecord:
        endpoint, settings, target = self.endpoint, self.settings, self.target
        endpoint.begin(self.record)
        scale = f"; time scale {settings.time_scale:g}x (local only)" if settings.time_scale != 1 else ""
        self._entry(
            "DeploymentStarted",
            f"{self.decision.action} {self.blue.package.ref} -> {target.ref}: {self.decision.reason}; "
            f"{describe_policy(settings.policy, settings.instances)}{scale}",
            status=EndpointStatus.UPDATING,
        )
        starting = time.monotonic()
        try:
            self.green = endpoint.start_fleet(target, self.images)
        except EndpointError as exc:
            self._entry("NewFleetUnhealthy", str(exc), status=EndpointStatus.IN_SERVICE)
            return self._finish(UpdateResult.FAILED, f"the new fleet never became healthy: {exc}")
        # The time scale divides the waits, not the new fleet's start, yet the execution timeout covers
        # both: the start counts toward it as if it had been scaled too, so a deployment that would
        # finish in time on SageMaker is not rolled back here for a model server that starts slowly.
        started = time.monotonic() - starting
        self.deadline += started - settings.scaled(started)
        endpoint.stage_fleet(self.green)
        self._entry("NewFleetHealthy", f"{target.ref} passed its health check at {self.green.url}")
        endpoint.measurements.watch()
        try:
            return self._shift_and_bake()
        finally:
            endpoint.measurements.unwatch()

    def _shift_and_bake(self) -> DeploymentRecord:
        assert self.green is not None
        settings = self.settings
        steps = traffic_steps(settings.policy, settings.instances)
        period = settings.alarm_period
        if period is not None:
            self.watch = AlarmWatch(settings.alarms, period, origin=time.monotonic())
        for number, share in enumerate(steps, start=1):
            self._route(share)
            self._entry(
                "TrafficShifted", f"step {number} of {len(steps)}: green takes {share:.0%} of traffic"
            )
            bake = settings.scaled(settings.policy.wait_seconds)
            self._entry(
                "Baking",
                f"baking {settings.policy.wait_seconds} s ({bake:.2f} s local) with the rollback alarms on",
            )
            stopped = self._bake(bake)
            if stopped is not None:
                return self._roll_back(stopped)
        wait = settings.scaled(settings.policy.termination_wait_seconds)
        self._entry(
            "TerminationWait",
            f"all traffic on green; the old fleet stays up {settings.policy.termination_wait_seconds} s "
            f"({wait:.2f} s local) before it stops",
        )
        if self.endpoint.stopping.wait(wait):
            return self._roll_back(_Stop("the endpoint is stopping"))
        self._retire(self.blue)
        self.endpoint.promote(self.green)
        self._entry(
            "OldFleetStopped",
            f"{self.blue.package.ref} stopped after its requests in flight",
            status=EndpointStatus.IN_SERVICE,
        )
        return self._finish(UpdateResult.UPDATED, "")

    def _bake(self, seconds: float) -> _Stop | None:
        """Wait ``seconds`` while closing each alarm period as it ends; why it stopped early, if it did."""
        end = time.monotonic() + seconds
        while True:
            while self.watch is not None and time.monotonic() >= self.watch.next_boundary():
                period = self.watch.close_period(self.endpoint.measurements)
                self._evaluated(period)
                firing = period.firing
                if firing:
                    return _Stop(f"alarm {firing[0].alarm.name} fired", firing[0])
            current = time.monotonic()
            if current >= end:
                return None
            if current >= self.deadline:
                timeout = self.settings.policy.maximum_execution_timeout_seconds
                return _Stop(f"the deployment exceeded MaximumExecutionTimeoutInSeconds ({timeout} s)")
            wake = min(end, self.deadline)
            if self.watch is not None:
                wake = min(wake, self.watch.next_boundary())
            if self.endpoint.stopping.wait(max(0.0, wake - current)):
                return _Stop("the endpoint is stopping")

    def _evaluated(self, period: Period) -> None:
        total = sum(period.invocations.values())
        errors = sum(period.errors_5xx.values())
        by_fleet = ", ".join(
            f"{self._role(f)} {n} ({period.errors_5xx.get(f, 0)} 5xx)"
            for f, n in sorted(period.invocations.items())
        )
        detail = f"period {period.index + 1}: {total} invocation(s), {errors} 5xx" + (
            f" [{by_fleet}]" if by_fleet else ""
        )
        detail += "; " + "; ".join(describe_state(s) for s in period.states)
        self._entry("AlarmsEvaluated", detail, period=self._period_json(period))

    def _period_json(self, period: Period) -> dict[str, Any]:
        data = period.to_json()
        data["Invocations"] = {self._role(k): v for k, v in period.invocations.items()}
        data["Invocation5XXErrors"] = {self._role(k): v for k, v in period.errors_5xx.items()}
        return data

    def _role(self, fleet_id: str) -> str:
        if fleet_id == self.blue.id:
            return "blue"
        if self.green is not None and fleet_id == self.green.id:
            return "green"
        return fleet_id

    def _roll_back(self, stop: _Stop) -> DeploymentRecord:
        assert self.green is not None
        endpoint = self.endpoint
        endpoint.router.route({self.blue: 1.0})
        detail = stop.reason
        if stop.alarm is not None:
            state = stop.alarm
            self.record.alarm = {
                **state.to_json(),
                "DatapointsToAlarm": state.alarm.datapoints_to_alarm,
                "EvaluationPeriods": state.alarm.evaluation_periods,
            }
            detail = f"{describe_state(state)}; datapoints (oldest first): {', '.join(_datapoints(state))}"
        self._entry(
            "TrafficRestored",
            f"{detail}: all traffic back on {self.blue.package.ref} (blue)",
            status=EndpointStatus.ROLLING_BACK,
        )
        self._retire(self.green)
        endpoint.stage_fleet(None)
        self._entry(
            "NewFleetStopped",
            f"{self.target.ref} stopped after its requests in flight",
            status=EndpointStatus.IN_SERVICE,
        )
        return self._finish(UpdateResult.ROLLED_BACK, detail)

    # -- steps -------------------------------------------------------------------------------------

    def _route(self, share: float) -> None:
        assert self.green is not None
        weights: Mapping[Fleet, float] = {self.blue: 1.0 - share, self.green: share}
        self.endpoint.router.route(weights)

    def _retire(self, fleet: Fleet) -> None:
        fleet.drain()
        fleet.stop()

    def _shares(self) -> dict[str, float]:
        shares = self.endpoint.router.shares()
        out = {"blue": shares.get(self.blue.id, 0.0)}
        if self.green is not None:
            out["green"] = shares.get(self.green.id, 0.0)
        return out

    def _entry(
        self,
        event: str,
        detail: str,
        *,
        status: EndpointStatus | None = None,
        period: dict[str, Any] | None = None,
    ) -> None:
        self.endpoint.log(self.record, event, detail, self._shares(), status=status, period=period)

    def _finish(self, update: UpdateResult, reason: str) -> DeploymentRecord:
        endpoint = self.endpoint
        outcome = verify(
            self.target.arn,
            update=update,
            endpoint_status=str(endpoint.status),
            serving_arn=endpoint.package.arn,
            update_reason=reason,
        )
        record = self.record
        succeeded = outcome.status == Status.SUCCEEDED
        self._entry("DeploymentSucceeded" if succeeded else "DeploymentFailed", outcome.reason)
        finished = now()
        event = event_detail(
            endpoint.name,
            self.decision,
            outcome,
            started=record.started.isoformat(),
            finished=finished.isoformat(),
            timeline=[t.to_json() for t in record.timeline],
        )
        endpoint.finish(
            record, status=str(outcome.status), reason=outcome.reason, finished=finished, event=event
        )
        return record
