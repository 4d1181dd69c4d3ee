"""The rollback alarms as the local endpoint evaluates them, and how it splits traffic (no servers).

The alarm definitions are ``stage.alarms``' (the ones the Serving stack turns into CloudWatch
alarms); these tests pin the units, the statistics, M of N datapoints and missing data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
from runtime_testing import DEV, serving_stage, settings_for

from emulators.core.errors import EndpointError
from emulators.sagemaker_runtime.deployment import describe_policy, traffic_steps
from emulators.sagemaker_runtime.fleets import Fleet, Router
from emulators.sagemaker_runtime.metrics import AlarmWatch, Invocation, Measurements, percentile, statistic
from stage.alarms import RollbackAlarm, rollback_alarms
from stage.names import alarm_names
from stage.serving import DeploymentPolicy


def alarms() -> dict[str, RollbackAlarm]:
    return {a.purpose: a for a in rollback_alarms(DEV)}


def test_the_stage_alarms_in_cloudwatch_units() -> None:
    found = alarms()
    settings = DEV.serving.alarms
    names = alarm_names(DEV)
    assert {purpose: a.name for purpose, a in found.items()} == names
    errors, model, overhead = found["errors"], found["model_latency"], found["overhead_latency"]
    assert (errors.metric, errors.statistic, errors.threshold) == ("Invocation5XXErrors", "Average", 0.05)
    assert (model.metric, model.statistic) == ("ModelLatency", "p99")
    assert model.threshold == settings.model_latency_p99_ms * 1000  # microseconds
    assert overhead.threshold == settings.overhead_latency_p99_ms * 1000
    for alarm in found.values():
        assert alarm.comparison == "GreaterThanThreshold"
        assert alarm.treat_missing_data == "notBreaching"
        assert (alarm.period_seconds, alarm.evaluation_periods, alarm.datapoints_to_alarm) == (
            settings.period_seconds,
            settings.evaluation_periods,
            settings.datapoints_to_alarm,
        )


def call(
    status: int = 200, model_ms: float | None = 5.0, overhead_ms: float = 1.0, at: float = 0.5
) -> Invocation:
    return Invocation(
        finished=at,
        fleet="fleet-1",
        status=status,
        model_us=None if model_ms is None else model_ms * 1000,
        overhead_us=overhead_ms * 1000,
    )


def test_statistics_are_computed_as_cloudwatch_reports_them() -> None:
    found = alarms()
    calls = [call(500)] + [call(200)] * 3
    # Invocation5XXErrors is 0/1 per invocation: its Average is the error rate.
    assert statistic(found["errors"], calls) == 0.25
    latencies = [call(model_ms=float(ms)) for ms in range(1, 101)]
    assert statistic(found["model_latency"], latencies) == 99_000  # p99 of 1..100 ms, in microseconds
    assert statistic(found["overhead_latency"], [call(overhead_ms=2.5)]) == 2_500
    # A request the container never answered has no ModelLatency but counts as an invocation.
    assert statistic(found["model_latency"], [call(500, model_ms=None)]) is None
    assert statistic(found["errors"], [call(500, model_ms=None)]) == 1.0
    # No invocations: missing data.
    assert all(statistic(a, []) is None for a in found.values())


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 201))), 99) == 198.0


def test_an_unknown_metric_is_refused_by_name() -> None:
    bad = alarms()["errors"].__class__(**{**vars(alarms()["errors"]), "metric": "CPUUtilization"})
    with pytest.raises(EndpointError, match="cannot measure 'CPUUtilization'"):
        statistic(bad, [call()])


def periods(values: list[list[Invocation]], alarm: RollbackAlarm) -> list[bool]:
    """Feed one list of invocations per period; whether the alarm fires at each period's end."""
    measurements = Measurements()
    measurements.watch()
    watch = AlarmWatch([alarm], period_seconds=1.0, origin=0.0)
    fired = []
    for index, invocations in enumerate(values):
        for i in invocations:
            measurements.record(Invocation(index + 0.5, i.fleet, i.status, i.model_us, i.overhead_us))
        fired.append(bool(watch.close_period(measurements).firing))
    return fired


def test_m_of_n_datapoints_and_missing_data_do_not_breach() -> None:
    errors = alarms()["errors"]  # 2 of 3, > 5%
    bad, good = [call(500), call(200)], [call(200)] * 4
    assert periods([bad, good, bad], errors) == [False, False, True]
    assert periods([bad, good, good, bad], errors) == [False, False, False, False]
    # Periods without invocations are missing data: never breaching, so they do not fire the alarm...
    assert periods([bad, [], [], bad], errors) == [False, False, False, False]
    # ...and they do not count against breaching ones either.
    assert periods([bad, [], bad], errors) == [False, False, True]
    # Exactly at the threshold is not above it.
    at_threshold = [call(500)] + [call(200)] * 19  # 5%
    assert periods([at_threshold] * 3, errors) == [False, False, False]


def test_the_latency_alarm_breaches_on_the_p99_not_the_mean() -> None:
    model = alarms()["model_latency"]  # p99 > 500 ms
    mostly_fast = [call(model_ms=10)] * 98 + [call(model_ms=900)] * 2
    assert periods([mostly_fast] * 3, model) == [False, True, True]
    rare = [call(model_ms=10)] * 199 + [call(model_ms=900)]
    assert periods([rare] * 3, model) == [False, False, False]


class _Fake:
    def __init__(self, name: str) -> None:
        self.id = name
        self.count = 0

    def begin(self) -> None:
        self.count += 1


def test_the_router_gives_each_fleet_its_share_within_one_request() -> None:
    router = Router()
    blue, green = _Fake("blue"), _Fake("green")
    router.route(cast(dict[Fleet, float], {blue: 0.75, green: 0.25}))
    picks = Counter(cast(Any, router.acquire()).id for _ in range(1000))
    assert picks == {"blue": 750, "green": 250}
    assert blue.count == 750 and green.count == 250  # counted in flight as they are handed out
    for n in (7, 13, 101):
        window = Counter(cast(Any, router.acquire()).id for _ in range(n))
        assert abs(window["green"] - n / 4) <= 1
    router.route(cast(dict[Fleet, float], {blue: 1.0}))
    assert {cast(Any, router.acquire()).id for _ in range(10)} == {"blue"}
    assert router.shares() == {"blue": 1.0}
    with pytest.raises(ValueError, match="positive sum"):
        router.route(cast(dict[Fleet, float], {blue: 0.0}))


@pytest.mark.parametrize(
    ("policy", "instances", "steps"),
    [
        (DeploymentPolicy(traffic="canary", canary_instances=1), 2, (0.5, 1.0)),
        (DeploymentPolicy(traffic="canary", canary_instances=1), 4, (0.25, 1.0)),
        (DeploymentPolicy(traffic="linear", linear_step_instances=1), 4, (0.25, 0.5, 0.75, 1.0)),
        (DeploymentPolicy(traffic="linear", linear_step_instances=2), 3, (2 / 3, 1.0)),
        (DeploymentPolicy(traffic="all_at_once"), 2, (1.0,)),
    ],
)
def test_traffic_steps_follow_the_policy(
    policy: DeploymentPolicy, instances: int, steps: tuple[float, ...]
) -> None:
    assert traffic_steps(policy, instances) == pytest.approx(steps)
    assert len(steps) == policy.steps(instances)
    assert traffic_steps(policy, instances)[0] == pytest.approx(policy.first_share(instances))


def test_the_policy_described_for_people() -> None:
    text = describe_policy(DEV.serving.deployment, DEV.serving.initial_instance_count)
    assert text == (
        "blue/green canary of 1 of 2 instance(s): green takes 50%, 100% of traffic, baking 300 s after each "
        "step; termination wait 60 s"
    )


def test_endpoint_settings_from_the_stage_and_the_time_scale() -> None:
    settings = settings_for(serving_stage(wait_seconds=20, period_seconds=10), time_scale=20)
    assert settings.instances == 2 and settings.policy.wait_seconds == 20
    assert settings.alarm_period == 0.5 and settings.scaled(20) == 1.0
    assert settings.capture is not None
    assert settings.capture.destination_uri == "s3://rookery-dev-raw/capture"
    assert settings.capture.sampling_percent == DEV.serving.capture_sampling_percent
    config = settings.deployment_config()
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 20,
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
    }
    assert [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]] == list(
        alarm_names(DEV).values()
    )


@pytest.mark.parametrize("scale", [0, 0.5, -3, 1001, float("nan")])
def test_a_bad_time_scale_is_refused_with_the_range(scale: float) -> None:
    with pytest.raises(EndpointError, match=r"time scale .* is not within 1-1000"):
        settings_for(DEV, time_scale=scale)
