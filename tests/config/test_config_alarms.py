"""The rollback alarms as pure descriptions: CloudWatch's units from the stage's, and how they fire.

The Serving stack builds its CloudWatch alarms from these descriptions, and anything that evaluates
them away from CloudWatch reads the same ones, so these tests pin the meaning both rely on.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stage import load_stage, parse_stage
from stage.alarms import METRICS, NAMESPACE, RollbackAlarm, cloudwatch_threshold, rollback_alarms
from stage.names import VARIANT_NAME, alarm_names, endpoint_name
from stage.serving import RollbackAlarms

DATASET: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm"],
    "categorical": ["island"],
}


def _alarms(**settings: Any) -> dict[str, RollbackAlarm]:
    stage = parse_stage("dev", {"dataset": DATASET, "serving": {"alarms": settings}}, source="test.toml")
    return {a.purpose: a for a in rollback_alarms(stage)}


def test_the_error_alarm_watches_the_5xx_average_which_is_already_a_rate() -> None:
    errors = _alarms(error_rate=0.05)["errors"]
    assert (errors.metric, errors.statistic) == ("Invocation5XXErrors", "Average")
    assert errors.threshold == 0.05  # 1 = 100%: no conversion
    assert errors.percentile is None
    assert "1 = 100%" in errors.unit


def test_latency_alarms_watch_p99_in_microseconds() -> None:
    alarms = _alarms(model_latency_p99_ms=250, overhead_latency_p99_ms=80)
    assert (alarms["model_latency"].metric, alarms["model_latency"].statistic) == ("ModelLatency", "p99")
    assert alarms["model_latency"].threshold == 250_000
    assert (alarms["overhead_latency"].metric, alarms["overhead_latency"].threshold) == (
        "OverheadLatency",
        80_000,
    )
    assert alarms["model_latency"].percentile == 99.0
    assert alarms["model_latency"].unit == "microseconds"


@given(
    rate=st.floats(min_value=0.0001, max_value=0.9999),
    model_ms=st.floats(min_value=0.001, max_value=60_000),
    overhead_ms=st.floats(min_value=0.001, max_value=60_000),
)
def test_one_conversion_for_every_purpose(rate: float, model_ms: float, overhead_ms: float) -> None:
    settings = RollbackAlarms(
        error_rate=rate, model_latency_p99_ms=model_ms, overhead_latency_p99_ms=overhead_ms
    )
    assert cloudwatch_threshold("errors", settings) == rate
    assert cloudwatch_threshold("model_latency", settings) == model_ms * 1000
    assert cloudwatch_threshold("overhead_latency", settings) == overhead_ms * 1000


def test_an_unknown_purpose_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown alarm purpose 'cpu'; choose from"):
        cloudwatch_threshold("cpu", RollbackAlarms())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_each_stage_has_three_named_alarms_on_its_endpoint_and_variant(name: str) -> None:
    stage = load_stage(name)
    alarms = rollback_alarms(stage)
    settings = stage.serving.alarms
    assert [a.purpose for a in alarms] == list(METRICS)
    assert [a.name for a in alarms] == [alarm_names(stage)[a.purpose] for a in alarms]
    for alarm in alarms:
        assert alarm.namespace == NAMESPACE == "AWS/SageMaker"
        assert dict(alarm.dimensions) == {"EndpointName": endpoint_name(stage), "VariantName": VARIANT_NAME}
        assert (alarm.period_seconds, alarm.evaluation_periods, alarm.datapoints_to_alarm) == (
            settings.period_seconds,
            settings.evaluation_periods,
            settings.datapoints_to_alarm,
        )
        assert (alarm.comparison, alarm.treat_missing_data) == ("GreaterThanThreshold", "notBreaching")


def test_an_alarm_fires_on_m_breaching_periods_of_the_last_n_and_missing_data_never_breaches() -> None:
    alarm = _alarms(error_rate=0.1, evaluation_periods=3, datapoints_to_alarm=2)["errors"]
    assert not alarm.breaches(0.1)  # greater than, not equal
    assert alarm.breaches(0.11)
    assert not alarm.breaches(None)
    assert alarm.in_alarm([0.5, 0.0, 0.5])
    assert not alarm.in_alarm([0.5, None, None])
    assert not alarm.in_alarm([0.5, 0.5, 0.0, 0.0, 0.0])  # only the last three periods count
    assert alarm.in_alarm([0.0, 0.0, 0.2, None, 0.3])
    assert not alarm.in_alarm([])
