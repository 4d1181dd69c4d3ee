"""The monitoring part of a stage: how often the endpoint's traffic is checked, against which
thresholds, and the reaction to a failed check: its alarm notifies the stage's monitoring topic, and
with ``reaction = "retrain"`` also starts the pipeline on the latest data, at most once per
``retrain_min_interval_hours``.

Pure pydantic. The thresholds enter the pipeline's Baseline step, which writes them into the
baseline's ``constraints.json``: the registered model carries the thresholds it is judged by, on
AWS and locally alike. The schedule and the job's resources configure the Serving stack.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stage.serving import InstanceType

# Monitoring schedules run at most hourly; these periods divide a day evenly.
SCHEDULE_HOURS: Final = (1, 2, 3, 4, 6, 8, 12, 24)
SECONDS_PER_HOUR: Final = 3600

# What a monitoring alarm does: notify the topic only, or also start the pipeline (through the trigger).
Reaction = Literal["notify", "retrain"]
NOTIFY: Final[Reaction] = "notify"
RETRAIN: Final[Reaction] = "retrain"
# The longest minimum interval between retraining runs: 30 days (a stage that wants fewer should
# notify and retrain by hand).
MAX_RETRAIN_INTERVAL_HOURS: Final = 30 * 24


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DriftThresholds(_Model):
    """When a feature of the captured traffic counts as moved away from the training split.

    ``numeric_psi``: population stability index over the baseline's decile bins (0.1 is a small,
    0.2 a significant shift by the usual reading). ``categorical_linf``: the largest change of one
    category's share. ``missing_rate_increase``: how much the share of missing values may grow over
    the baseline's. ``invalid_share`` and ``unknown_category_share``: the share of values that are
    not of the feature's type, or categories the training split never had, tolerated in a window.
    A distance is judged only where the window is large enough for it to mean something: the
    effective threshold is the larger of the stage's and the distance same-distribution samples of
    the window's size reach by chance once in a thousand windows.
    """

    numeric_psi: float = Field(default=0.2, gt=0, le=10)
    categorical_linf: float = Field(default=0.1, gt=0, lt=1)
    missing_rate_increase: float = Field(default=0.05, ge=0, lt=1)
    invalid_share: float = Field(default=0.01, ge=0, lt=1)
    unknown_category_share: float = Field(default=0.01, ge=0, lt=1)


class QualityThresholds(_Model):
    """How far each classification metric may fall below its baseline (the test split's value)."""

    max_drop: float = Field(default=0.1, gt=0, lt=1)
    min_labelled_records: int = Field(default=20, ge=1)


class MonitoringSettings(_Model):
    """Data-quality and model-quality monitoring of the stage's endpoint.

    ``reaction``: ``"notify"`` (the default) publishes each alarm to the monitoring topic only;
    ``"retrain"`` also starts the pipeline on the dataset's raw prefix when an alarm enters ALARM,
    unless a run the trigger started began less than ``retrain_min_interval_hours`` earlier. The
    retrained version passes the gate and waits for a person (the stage refuses ``retrain`` unless
    ``ml.approval_status`` is ``PendingManualApproval``).
    """

    enabled: bool = True
    every_hours: int = 1
    instance_type: InstanceType = "ml.m5.large"
    volume_size_gb: int = Field(default=20, ge=1, le=512)
    max_runtime_seconds: int = Field(default=1800, ge=60, le=24 * SECONDS_PER_HOUR)
    drift: DriftThresholds = DriftThresholds()
    quality: QualityThresholds = QualityThresholds()
    reaction: Reaction = NOTIFY
    retrain_min_interval_hours: int = Field(default=24, ge=1, le=MAX_RETRAIN_INTERVAL_HOURS)

    @model_validator(mode="after")
    def _schedule(self) -> MonitoringSettings:
        if self.every_hours not in SCHEDULE_HOURS:
            raise ValueError(
                f"every_hours = {self.every_hours} does not divide a day into whole hours; "
                f"use one of {list(SCHEDULE_HOURS)}"
            )
        if self.max_runtime_seconds > self.every_hours * SECONDS_PER_HOUR:
            raise ValueError(
                f"max_runtime_seconds = {self.max_runtime_seconds} exceeds the schedule's period "
                f"({self.every_hours} h): a job would still run when the next one starts; lower it"
            )
        if self.reaction == RETRAIN and not self.enabled:
            raise ValueError(
                f'reaction = "{RETRAIN}" reacts to the monitoring alarms, which enabled = false does not '
                f'create; set reaction = "{NOTIFY}" or enable monitoring'
            )
        return self

    @property
    def retrains(self) -> bool:
        """Whether an alarm starts the pipeline (monitoring is on and the reaction is ``retrain``)."""
        return self.enabled and self.reaction == RETRAIN

    @property
    def schedule_expression(self) -> str:
        """SageMaker's cron form: at minute 0 of every ``every_hours``-th hour (UTC)."""
        if self.every_hours == 24:
            return "cron(0 0 ? * * *)"
        hours = "*" if self.every_hours == 1 else f"*/{self.every_hours}"
        return f"cron(0 {hours} ? * * *)"
