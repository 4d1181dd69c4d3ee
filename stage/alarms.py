"""The endpoint's rollback alarms as pure descriptions, in CloudWatch's units.

The Serving stack turns each ``RollbackAlarm`` into an ``AWS::CloudWatch::Alarm`` that SageMaker's
blue/green deployment watches; the local endpoint evaluates the very same descriptions on its own
measurements (``breaches``, ``in_alarm``). The stage states thresholds in the units people think in
(``stage.serving.RollbackAlarms``); ``cloudwatch_threshold`` is the one conversion to CloudWatch's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from stage.model import Stage
from stage.names import VARIANT_NAME, alarm_names, endpoint_name
from stage.serving import RollbackAlarms

NAMESPACE: Final = "AWS/SageMaker"
MICROSECONDS_PER_MILLISECOND: Final = 1000

Purpose = Literal["errors", "model_latency", "overhead_latency"]


@dataclass(frozen=True)
class AlarmMetric:
    """What an alarm of one purpose watches, and in which unit CloudWatch reports it."""

    metric: str
    statistic: str  # "Average", or a percentile such as "p99" (CloudWatch's ExtendedStatistic)
    unit: str  # what a value of the statistic means


# Invocation5XXErrors is 0 or 1 per invocation, so its Average over a period is the share of
# invocations the model answered with a 5xx (1 = 100%). ModelLatency and OverheadLatency are
# reported in microseconds.
METRICS: Final[Mapping[Purpose, AlarmMetric]] = MappingProxyType(
    {
        "errors": AlarmMetric("Invocation5XXErrors", "Average", "share of invocations (1 = 100%)"),
        "model_latency": AlarmMetric("ModelLatency", "p99", "microseconds"),
        "overhead_latency": AlarmMetric("OverheadLatency", "p99", "microseconds"),
    }
)


def cloudwatch_threshold(purpose: Purpose, alarms: RollbackAlarms) -> float:
    """The stage's threshold for ``purpose`` in the unit CloudWatch reports the metric in."""
    if purpose == "errors":
        return alarms.error_rate
    if purpose == "model_latency":
        return alarms.model_latency_p99_ms * MICROSECONDS_PER_MILLISECOND
    if purpose == "overhead_latency":
        return alarms.overhead_latency_p99_ms * MICROSECONDS_PER_MILLISECOND
    raise ValueError(f"unknown alarm purpose {purpose!r}; choose from {sorted(METRICS)}")


@dataclass(frozen=True)
class RollbackAlarm:
    """One alarm: ``statistic`` of ``metric`` above ``threshold`` in ``datapoints_to_alarm`` of the
    last ``evaluation_periods`` periods; a period without data does not breach."""

    purpose: Purpose
    name: str
    metric: str
    statistic: str
    unit: str
    threshold: float
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    dimensions: tuple[tuple[str, str], ...]
    namespace: str = NAMESPACE
    comparison: Literal["GreaterThanThreshold"] = "GreaterThanThreshold"
    treat_missing_data: Literal["notBreaching"] = "notBreaching"

    @property
    def percentile(self) -> float | None:
        """99.0 for ``p99``; None for a plain statistic such as ``Average``."""
        return float(self.statistic[1:]) if self.statistic.startswith("p") else None

    def breaches(self, value: float | None) -> bool:
        """Whether one period's value breaches; a missing value never does (``notBreaching``)."""
        return value is not None and value > self.threshold

    def in_alarm(self, values: Sequence[float | None]) -> bool:
        """Whether the alarm fires on these period values (oldest first): M of the last N breach."""
        recent = list(values)[-self.evaluation_periods :]
        return sum(self.breaches(v) for v in recent) >= self.datapoints_to_alarm


def rollback_alarms(stage: Stage) -> tuple[RollbackAlarm, ...]:
    """The stage's three rollback alarms, in the order the deployment config lists them."""
    settings = stage.serving.alarms
    names = alarm_names(stage)
    dimensions = (("EndpointName", endpoint_name(stage)), ("VariantName", VARIANT_NAME))
    purposes: tuple[Purpose, ...] = ("errors", "model_latency", "overhead_latency")
    return tuple(
        RollbackAlarm(
            purpose=purpose,
            name=names[purpose],
            metric=METRICS[purpose].metric,
            statistic=METRICS[purpose].statistic,
            unit=METRICS[purpose].unit,
            threshold=cloudwatch_threshold(purpose, settings),
            period_seconds=settings.period_seconds,
            evaluation_periods=settings.evaluation_periods,
            datapoints_to_alarm=settings.datapoints_to_alarm,
            dimensions=dimensions,
        )
        for purpose in purposes
    )
