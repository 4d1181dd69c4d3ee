"""The demo's deployment section from records written by hand: what ``summarize`` reads from a
deployment record and the clients' calls, the timeline plot, and the section in the report. The
demo's own deployments (a real endpoint, real model servers) are tested in test_demo_run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest
from demo_testing import embedded_png

from rookery.demo.deployment import (
    AlarmRow,
    DeploymentRun,
    DeploymentStory,
    Wait,
    intervals,
    summarize,
)
from rookery.demo.report import PNG_SIGNATURE, Phase, ReportData, Section, embed_png, render_report
from rookery.demo.timeline import timeline_png
from rookery.demo.traffic import Call
from stage import load_stage
from stage.alarms import rollback_alarms

ALARMS: Final = rollback_alarms(load_stage("dev"))
ERRORS_ALARM: Final = next(a for a in ALARMS if a.purpose == "errors")
CONFIG: Final = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300},
        "TerminationWaitInSeconds": 60,
    }
}
APPROVED_AT: Final = 100.0
STARTED_AT: Final = 100.5  # the deployer noticed the approval half a second later
PERIOD: Final = 0.6


def entry(seconds: float, event: str, status: str = "Updating", **shares: float) -> dict[str, Any]:
    return {"Seconds": seconds, "Event": event, "EndpointStatus": status, "Shares": shares, "Detail": event}


def evaluated(seconds: float, start: float, blue: int, green: int) -> dict[str, Any]:
    found = entry(seconds, "AlarmsEvaluated", blue=0.5, green=0.5)
    found["Period"] = {"Start": start, "Invocations": {"blue": blue, "green": green}}
    return found


def record(
    status: str, timeline: list[dict[str, Any]], alarm: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "DeploymentId": "20240501T120000-v2-1",
        "Decision": "version 2 is the highest approved; the endpoint serves version 1",
        "Previous": {"ModelPackage": "rookery-dev-models/1"},
        "Target": {"ModelPackage": "rookery-dev-models/2"},
        "DeploymentConfig": CONFIG,
        "Status": status,
        "Reason": "why",
        "Alarm": alarm,
        "Timeline": timeline,
    }


SWAP: Final = record(
    "Succeeded",
    [
        entry(0.0, "DeploymentStarted", blue=1.0),
        entry(1.0, "NewFleetHealthy", blue=1.0, green=0.0),
        entry(1.0, "TrafficShifted", blue=0.5, green=0.5),
        entry(1.0, "Baking", blue=0.5, green=0.5),
        evaluated(1.6, 0.0, blue=6, green=6),
        evaluated(2.2, 0.6, blue=5, green=7),
        entry(4.0, "TrafficShifted", blue=0.0, green=1.0),
        entry(4.0, "Baking", blue=0.0, green=1.0),
        entry(7.0, "TerminationWait", blue=0.0, green=1.0),
        entry(7.6, "OldFleetStopped", "InService", blue=0.0, green=1.0),
        entry(7.6, "DeploymentSucceeded", "InService", blue=0.0, green=1.0),
    ],
)
ROLLBACK: Final = record(
    "Failed",
    [
        entry(0.0, "DeploymentStarted", blue=1.0),
        entry(0.4, "NewFleetHealthy", blue=1.0, green=0.0),
        entry(0.4, "TrafficShifted", blue=0.5, green=0.5),
        entry(0.4, "Baking", blue=0.5, green=0.5),
        evaluated(1.0, 0.0, blue=6, green=6),
        evaluated(1.6, 0.6, blue=6, green=6),
        entry(1.6, "TrafficRestored", "RollingBack", blue=1.0, green=0.0),
        entry(1.9, "NewFleetStopped", "InService", blue=1.0, green=0.0),
        entry(1.9, "DeploymentFailed", "InService", blue=1.0, green=0.0),
    ],
    alarm={
        "AlarmName": ERRORS_ALARM.name,
        "MetricName": "Invocation5XXErrors",
        "Statistic": "Average",
        "Threshold": ERRORS_ALARM.threshold,
        "Value": 0.5,
        "Breaching": 2,
        "Of": 2,
        "StateValue": "ALARM",
        "Datapoints": [0.5, 0.5],
        "DatapointsToAlarm": 2,
        "EvaluationPeriods": 3,
    },
)


def calls_every(
    step: float, start: float, end: float, failing: tuple[float, float] | None = None
) -> list[Call]:
    """A call every ``step`` seconds from ``start`` to ``end`` after the approval (half a step in, so
    none starts on a boundary), each about 50 ms; in the ``failing`` window every other call fails,
    as half the traffic on a broken canary does."""
    out = []
    for number in range(round((end - start) / step)):
        t = start + (number + 0.5) * step
        fails = failing is not None and failing[0] <= t < failing[1] and number % 2 == 1
        out.append(Call(APPROVED_AT + t, 0.05 + 0.001 * (number % 10), "ModelError" if fails else None))
    return out


def summarized(kind: str, raw: dict[str, Any], calls: list[Call]) -> DeploymentRun:
    return summarize(
        kind,  # type: ignore[arg-type]
        raw,
        calls,
        approved_at=APPROVED_AT,
        started_at=STARTED_AT,
        alarm_period=PERIOD,
        alarms=ALARMS,
        serving_after="rookery-dev-models/2" if kind == "swap" else "rookery-dev-models/1",
        status_after="InService",
    )


def test_a_swap_is_read_as_shares_over_time_with_its_moments_after_the_approval() -> None:
    calls = calls_every(0.1, -1.0, 9.0)

    run = summarized("swap", SWAP, calls)

    # Times are after the approval: the deployment started 0.5 s after it.
    assert run.started == pytest.approx(0.5)
    assert run.traffic_shifted == pytest.approx(1.5)
    assert run.full_traffic == pytest.approx(7.5)
    assert run.ended == pytest.approx(8.1)
    assert run.restored is None and run.alarm is None
    # Only changes of the routing count as steps: all on blue, the canary's half, all on green.
    assert [(s.blue, s.green) for s in run.shares] == [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
    # The first step starts with the first call.
    assert [s.seconds for s in run.shares] == pytest.approx([-0.95, 1.5, 4.5])
    assert run.canary_share == 0.5
    # Each alarm period's count, placed in the middle of its period.
    assert [(m.seconds, m.green, m.invocations) for m in run.measured] == [
        (pytest.approx(1.8), 0.5, 12),
        (pytest.approx(2.4), 7 / 12, 12),
    ]
    assert (run.requests, run.failures, run.failures_after) == (100, 0, 0)
    assert run.canary_requests == 60  # started from the first step until all traffic was on green
    assert [t.event for t in run.timeline][:2] == ["DeploymentStarted", "NewFleetHealthy"]
    assert len(run.periods) == 2 and "AlarmsEvaluated" not in [t.event for t in run.timeline]
    assert (run.previous, run.target) == ("rookery-dev-models/1", "rookery-dev-models/2")


def test_the_stretches_of_a_swap_carry_their_length_at_the_stages_timing() -> None:
    run = summarized("swap", SWAP, calls_every(0.1, -1.0, 9.0))

    assert [(s.what, s.stage_seconds) for s in run.spans] == [
        ("new fleet starts", None),
        ("bake 1", 300),
        ("bake 2", 300),
        ("termination wait", 60),
    ]
    assert [(s.start, s.end) for s in run.spans] == [
        (pytest.approx(0.5), pytest.approx(1.5)),
        (pytest.approx(1.5), pytest.approx(4.5)),
        (pytest.approx(4.5), pytest.approx(7.5)),
        (pytest.approx(7.5), pytest.approx(8.1)),
    ]


def test_a_rollback_names_its_alarm_in_percent_and_counts_the_canarys_failures() -> None:
    calls = calls_every(0.1, -1.0, 4.0, failing=(0.9, 2.1))

    run = summarized("rollback", ROLLBACK, calls)

    assert run.restored == pytest.approx(2.1)
    assert run.full_traffic is None
    assert run.alarm is not None
    assert run.alarm.name == ERRORS_ALARM.name
    assert (run.alarm.threshold, run.alarm.datapoints) == ("5.0%", ("50.0%", "50.0%"))
    assert (run.alarm.breaching, run.alarm.considered, run.alarm.datapoints_to_alarm) == (2, 2, 2)
    assert (run.canary_requests, run.canary_failures) == (12, 6)
    assert run.canary_failure_share == 0.5
    assert run.failures == 6 and run.failures_after == 0
    assert [(s.what, s.stage_seconds) for s in run.spans] == [
        ("new fleet starts", None),
        ("bake 1", 300),
        ("rolling back", None),
    ]


def test_a_latency_alarm_reads_in_milliseconds() -> None:
    latency = next(a for a in ALARMS if a.purpose == "model_latency")
    alarm = {
        **ROLLBACK["Alarm"],
        "AlarmName": latency.name,
        "MetricName": "ModelLatency",
        "Statistic": "p99",
        "Threshold": latency.threshold,
        "Datapoints": [None, 812_000.0],
    }

    run = summarized("rollback", {**ROLLBACK, "Alarm": alarm}, calls_every(0.1, -1.0, 4.0))

    assert run.alarm is not None
    assert run.alarm.threshold == f"{latency.threshold / 1000:.1f} ms"
    assert run.alarm.datapoints == ("missing", "812.0 ms")


def test_calls_are_binned_by_start_on_a_grid_through_the_approval() -> None:
    calls = [Call(APPROVED_AT + t, s, e) for t, s, e in [
        (-0.5, 0.010, None), (0.2, 0.020, None), (0.4, 0.030, "ModelError"), (0.9, 0.040, None),
        (2.6, 0.100, None),
    ]]  # fmt: skip

    found = intervals(calls, origin=APPROVED_AT, width=1.0)

    assert [(i.start, i.requests, i.failures) for i in found] == [
        (-1.0, 1, 0),
        (0.0, 3, 1),
        (1.0, 0, 0),
        (2.0, 1, 0),
    ]
    assert found[1].p50_ms == pytest.approx(30.0) and found[1].p99_ms == pytest.approx(40.0)
    assert found[2].p50_ms is None and found[2].p99_ms is None
    assert intervals([], origin=APPROVED_AT, width=1.0) == ()


def test_the_timeline_plot_is_a_png(tmp_path: Path) -> None:
    run = summarized("rollback", ROLLBACK, calls_every(0.1, -1.0, 4.0, failing=(0.9, 2.1)))

    path = timeline_png(tmp_path / "deployment" / "rollback.png", run, title="rollback")

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000


def told(swap: DeploymentRun | None, rollback: DeploymentRun | None) -> DeploymentStory:
    return DeploymentStory(
        endpoint_name="rookery-dev-demo",
        endpoint_url="http://127.0.0.1:8080",
        instances=2,
        policy="blue/green canary of 1 of 2 instance(s)",
        time_scale=100.0,
        waits=(Wait("bake after each of the 2 traffic steps", 300, 3.0), Wait("alarm period", 60, 0.6)),
        alarms=(
            AlarmRow(ERRORS_ALARM.name, "Invocation5XXErrors Average", "5.0%", "2 of 3 periods of 60 s"),
        ),
        first_version="rookery-dev-models/1",
        first_decision="version 1 is the highest approved; no endpoint serves a model yet",
        capture=None,
        swap_wait_seconds=660,
        alarm_seconds=120,
        swap=swap,
        rollback=rollback,
        rejected="none: the endpoint already serves version 2, the highest approved",
    )


def report(section: Section) -> str:
    data = ReportData(
        stage="dev",
        variant="train",
        generated_at="now",
        home=".rookery",
        passed=True,
        failure=None,
        phases=(Phase("swap", "passed", 9.0, "swapped"),),
        sections=(section,),
    )
    return render_report(data)


def test_the_deployment_section_shows_both_plots_the_alarm_and_the_time_scale(tmp_path: Path) -> None:
    plotted = []
    for kind, raw, calls in (
        ("swap", SWAP, calls_every(0.1, -1.0, 9.0)),
        ("rollback", ROLLBACK, calls_every(0.1, -1.0, 4.0, failing=(0.9, 2.1))),
    ):
        run = summarized(kind, raw, calls)
        path = timeline_png(tmp_path / f"{kind}.png", run, title=kind)
        plotted.append(replace(run, plot=embed_png(path, title=kind, alt=kind)))
    swap, rollback = plotted

    html = report(
        Section("deployment", "Deployment", "deployment.html.j2", told(swap, rollback), (("k", "v"),))
    )

    assert '<a href="#deployment">Deployment</a>' in html and '<section id="deployment">' in html
    for kind in ("swap", "rollback"):
        assert embedded_png(html, f"deployment-{kind}-plot") == (tmp_path / f"{kind}.png").read_bytes()
    assert "Time scale 100x" in html and "11 min 0 s" in html  # the swap's waits at the stage's timing
    assert f"alarm <code>{ERRORS_ALARM.name}</code>: Invocation5XXErrors Average was 50.0%, 50.0%" in html
    assert "against the threshold 5.0%" in html
    assert "the endpoint already serves version 2" in html
    assert '<div class="k">k</div><div class="v">v</div>' in html  # the section's summary card


def test_a_deployment_that_did_not_run_says_so() -> None:
    html = report(Section("deployment", "Deployment", "deployment.html.j2", None))
    partial = report(Section("deployment", "Deployment", "deployment.html.j2", told(None, None)))

    assert "The deployment did not run" in html and "timeline-plot" not in html
    assert "The swap did not run" in partial and "The rollback did not run" in partial
