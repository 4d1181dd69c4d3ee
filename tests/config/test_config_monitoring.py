"""The monitoring settings of a stage: the schedule, the thresholds the baseline carries, the reaction."""

from __future__ import annotations

from typing import Any

import pytest

from rookery_contracts import monitoring as mon
from stage import ConfigError, load_stage, parse_stage
from stage.monitoring import DriftThresholds, MonitoringSettings, QualityThresholds

DATASET: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm"],
    "categorical": ["island"],
}


def test_defaults_check_hourly() -> None:
    settings = load_stage("dev").monitoring
    assert settings.enabled and settings.every_hours == 1
    assert settings.schedule_expression == "cron(0 * ? * * *)"


@pytest.mark.parametrize(
    ("hours", "expression"), [(1, "cron(0 * ? * * *)"), (6, "cron(0 */6 ? * * *)"), (24, "cron(0 0 ? * * *)")]
)
def test_schedule_expression(hours: int, expression: str) -> None:
    assert MonitoringSettings(every_hours=hours).schedule_expression == expression


def test_a_period_that_does_not_divide_a_day_is_refused_with_the_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"monitoring.*every_hours = 5 .*use one of \[1, 2, 3, 4, 6, 8, 12, 24\]"
    ):
        parse_stage("dev", {"dataset": DATASET, "monitoring": {"every_hours": 5}}, source="test.toml")


def test_a_job_longer_than_the_period_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"max_runtime_seconds = 3601 exceeds the schedule's period"):
        monitoring = {"max_runtime_seconds": 3601, "every_hours": 1}
        parse_stage("dev", {"dataset": DATASET, "monitoring": monitoring}, source="test.toml")
    assert MonitoringSettings(every_hours=2, max_runtime_seconds=3600).max_runtime_seconds == 3600


def test_threshold_names_are_the_ones_the_baseline_step_reads() -> None:
    assert tuple(DriftThresholds.model_fields) == mon.DRIFT_THRESHOLDS
    assert tuple(QualityThresholds.model_fields) == mon.QUALITY_THRESHOLDS


def test_the_reaction_defaults_to_notify_and_prod_retrains_at_most_daily() -> None:
    assert (MonitoringSettings().reaction, MonitoringSettings().retrain_min_interval_hours) == ("notify", 24)
    dev, prod = load_stage("dev").monitoring, load_stage("prod").monitoring
    assert (dev.reaction, dev.retrains) == ("notify", False)
    assert (prod.reaction, prod.retrains, prod.retrain_min_interval_hours) == ("retrain", True, 24)


BAD_REACTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown reaction": (
        {"reaction": "retrain-now"},
        r"monitoring\.reaction = 'retrain-now': Input should be 'notify' or 'retrain'; \"notify\" publishes",
    ),
    "zero interval": (
        {"reaction": "retrain", "retrain_min_interval_hours": 0},
        r"retrain_min_interval_hours = 0: Input should be greater than or equal to 1; whole hours",
    ),
    "interval beyond 30 days": (
        {"retrain_min_interval_hours": 721},
        r"retrain_min_interval_hours = 721: Input should be less than or equal to 720; whole hours",
    ),
    "fractional interval": (
        {"retrain_min_interval_hours": 1.5},
        r"retrain_min_interval_hours = 1\.5: Input should be a valid integer",
    ),
    "retrain without monitoring": (
        {"reaction": "retrain", "enabled": False},
        r'monitoring: reaction = "retrain" reacts to the monitoring alarms, which enabled = false does not '
        r'create; set reaction = "notify" or enable monitoring',
    ),
}


@pytest.mark.parametrize(("monitoring", "message"), BAD_REACTIONS.values(), ids=BAD_REACTIONS.keys())
def test_a_bad_reaction_is_refused_with_the_fix(monitoring: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stage("dev", {"dataset": DATASET, "monitoring": monitoring}, source="test.toml")


def test_retraining_needs_the_endpoint_whose_alarms_start_it() -> None:
    raw = {"dataset": DATASET, "serving": {"enabled": False}, "monitoring": {"reaction": "retrain"}}
    with pytest.raises(ConfigError, match=r"which a stage with serving\.enabled = false does not have; set "):
        parse_stage("dev", raw, source="test.toml")
    notify = parse_stage("dev", {**raw, "monitoring": {"reaction": "notify"}}, source="test.toml")
    assert not notify.monitoring.retrains


def test_retraining_registers_every_version_for_a_person_to_approve() -> None:
    raw = {"dataset": DATASET, "ml": {"approval_status": "Approved"}, "monitoring": {"reaction": "retrain"}}
    with pytest.raises(
        ConfigError,
        match=r'monitoring\.reaction = "retrain" starts runs nobody asked for, so each version they register '
        r'must wait for a person: set ml\.approval_status = "PendingManualApproval" \(it is \'Approved\'\)',
    ):
        parse_stage("dev", raw, source="test.toml")
    notify = parse_stage("dev", {**raw, "monitoring": {"reaction": "notify"}}, source="test.toml")
    assert (notify.ml.approval_status, notify.monitoring.retrains) == ("Approved", False)
