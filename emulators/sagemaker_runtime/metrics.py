"""The endpoint's own measurements, as CloudWatch's SageMaker metrics, and its rollback alarms on them.

Every invocation leaves one :class:`Invocation`: which fleet answered, the container's status, the
time the container took (``ModelLatency``) and the rest of the front end's time (``OverheadLatency``),
in microseconds as CloudWatch reports them. ``Invocation5XXErrors`` is 1 for an invocation the model
(or the front end) answered with a 5xx, else 0, so its Average over a period is the error rate.

:class:`AlarmWatch` evaluates the stage's :class:`stage.alarms.RollbackAlarm` descriptions, the very
objects the Serving stack turns into CloudWatch alarms: per period one datapoint per alarm (a period
without invocations is missing data, which does not breach), in alarm when ``datapoints_to_alarm``
of the last ``evaluation_periods`` datapoints breach.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from emulators.core.errors import EndpointError
from stage.alarms import RollbackAlarm

# The local endpoint keeps at most this many invocations in memory while a deployment watches them.
MAX_KEPT: Final = 500_000


@dataclass(frozen=True)
class Invocation:
    finished: float  # time.monotonic() when the answer was sent
    fleet: str | None  # the fleet that answered; None when no fleet took the request
    status: int  # the container's status (the front end's own for errors it answered itself)
    model_us: float | None  # ModelLatency: the container's time; None when it never answered
    overhead_us: float  # OverheadLatency: the front end's time minus the container's

    @property
    def error_5xx(self) -> bool:
        return self.status >= 500


def _sample(metric: str) -> Callable[[Invocation], float | None]:
    if metric == "Invocation5XXErrors":
        return lambda i: 1.0 if i.error_5xx else 0.0
    if metric == "ModelLatency":
        return lambda i: i.model_us
    if metric == "OverheadLatency":
        return lambda i: i.overhead_us
    raise EndpointError(
        f"the local endpoint cannot measure {metric!r}; it measures Invocation5XXErrors, ModelLatency "
        "and OverheadLatency (the metrics of the stage's rollback alarms)"
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def statistic(alarm: RollbackAlarm, invocations: Iterable[Invocation]) -> float | None:
    """The alarm's statistic over one period's invocations, in CloudWatch's unit; None: no data."""
    sample = _sample(alarm.metric)
    values = [v for v in (sample(i) for i in invocations) if v is not None]
    if not values:
        return None
    if alarm.percentile is not None:
        return percentile(values, alarm.percentile)
    if alarm.statistic == "Average":
        return sum(values) / len(values)
    raise EndpointError(
        f"alarm {alarm.name}: the local endpoint cannot compute statistic {alarm.statistic!r}"
    )


class Measurements:
    """Invocations as they finish, kept only while someone (a deployment) is watching."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: deque[Invocation] | None = None

    def record(self, invocation: Invocation) -> None:
        with self._lock:
            if self._kept is not None:
                self._kept.append(invocation)

    def watch(self) -> None:
        with self._lock:
            self._kept = deque(maxlen=MAX_KEPT)

    def unwatch(self) -> None:
        with self._lock:
            self._kept = None

    def between(self, start: float, end: float) -> list[Invocation]:
        with self._lock:
            kept = list(self._kept or ())
        return [i for i in kept if start <= i.finished < end]


@dataclass(frozen=True)
class AlarmState:
    alarm: RollbackAlarm
    value: float | None  # this period's datapoint
    breaching: int  # breaching datapoints among the last evaluation_periods
    considered: int  # datapoints considered (fewer than evaluation_periods early on)
    firing: bool
    recent: tuple[float | None, ...]  # the datapoints the state was decided on, oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "AlarmName": self.alarm.name,
            "MetricName": self.alarm.metric,
            "Statistic": self.alarm.statistic,
            "Threshold": self.alarm.threshold,
            "Value": self.value,
            "Breaching": self.breaching,
            "Of": self.considered,
            "StateValue": "ALARM" if self.firing else "OK",
            "Datapoints": list(self.recent),
        }


@dataclass
class Period:
    """One alarm period: its invocations per fleet and every alarm's state at its end."""

    index: int
    start: float  # seconds since the watch began
    invocations: dict[str, int]
    errors_5xx: dict[str, int]
    states: list[AlarmState]

    @property
    def firing(self) -> list[AlarmState]:
        return [s for s in self.states if s.firing]

    def to_json(self) -> dict[str, Any]:
        return {
            "Period": self.index,
            "Start": round(self.start, 3),
            "Invocations": dict(self.invocations),
            "Invocation5XXErrors": dict(self.errors_5xx),
            "Alarms": [s.to_json() for s in self.states],
        }


@dataclass
class AlarmWatch:
    """The rollback alarms over consecutive periods of ``period_seconds`` from ``origin`` on."""

    alarms: Sequence[RollbackAlarm]
    period_seconds: float
    origin: float
    history: dict[str, list[float | None]] = field(default_factory=dict)
    periods: list[Period] = field(default_factory=list)

    def next_boundary(self) -> float:
        return self.origin + (len(self.periods) + 1) * self.period_seconds

    def close_period(self, measurements: Measurements) -> Period:
        """Evaluate the period that just ended (call at or after :meth:`next_boundary`)."""
        index = len(self.periods)
        start = self.origin + index * self.period_seconds
        invocations = measurements.between(start, start + self.period_seconds)
        counts: dict[str, int] = {}
        errors: dict[str, int] = {}
        for i in invocations:
            key = i.fleet or "none"
            counts[key] = counts.get(key, 0) + 1
            errors[key] = errors.get(key, 0) + int(i.error_5xx)
        states = []
        for alarm in self.alarms:
            value = statistic(alarm, invocations)
            values = self.history.setdefault(alarm.name, [])
            values.append(value)
            recent = tuple(values[-alarm.evaluation_periods :])
            breaching = sum(alarm.breaches(v) for v in recent)
            states.append(AlarmState(alarm, value, breaching, len(recent), alarm.in_alarm(values), recent))
        period = Period(index, index * self.period_seconds, counts, errors, states)
        self.periods.append(period)
        return period
