"""CloudWatch log groups the way every rookery component needs them: KMS-encrypted, with retention."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.audit.acknowledge import acknowledge_cross_stack, acknowledge_guard
from stage import LOG_RETENTION_DAYS, PRODUCTION_MIN_LOG_RETENTION_DAYS

_R = logs.RetentionDays
RETENTION: Final[Mapping[int, logs.RetentionDays]] = MappingProxyType(
    {
        1: _R.ONE_DAY, 3: _R.THREE_DAYS, 5: _R.FIVE_DAYS, 7: _R.ONE_WEEK, 14: _R.TWO_WEEKS,
        30: _R.ONE_MONTH, 60: _R.TWO_MONTHS, 90: _R.THREE_MONTHS, 120: _R.FOUR_MONTHS,
        150: _R.FIVE_MONTHS, 180: _R.SIX_MONTHS, 365: _R.ONE_YEAR, 400: _R.THIRTEEN_MONTHS,
        545: _R.EIGHTEEN_MONTHS, 731: _R.TWO_YEARS, 1096: _R.THREE_YEARS, 1827: _R.FIVE_YEARS,
        2192: _R.SIX_YEARS, 2557: _R.SEVEN_YEARS, 2922: _R.EIGHT_YEARS, 3288: _R.NINE_YEARS,
        3653: _R.TEN_YEARS,
    }
)  # fmt: skip
assert set(RETENTION) == set(LOG_RETENTION_DAYS), "stage.LOG_RETENTION_DAYS changed; update RETENTION"
# Secure default of every construct's ``log_retention_days``: a year of logs to investigate an incident.
DEFAULT_RETENTION_DAYS: Final = 365


def encrypted_log_group(
    scope: Construct, construct_id: str, *, key: kms.IKey, days: int, name: str | None = None
) -> logs.LogGroup:
    """A log group encrypted with ``key`` (which must trust CloudWatch Logs) and kept ``days`` days.

    Leave ``name`` unset (a generated name) unless a service writes to a name of its own choosing.
    """
    group = logs.LogGroup(
        scope, construct_id, encryption_key=key, retention=RETENTION[days], log_group_name=name
    )
    acknowledge_cross_stack(group, "cloudwatch_log_group_encrypted_check", key)
    if days < PRODUCTION_MIN_LOG_RETENTION_DAYS:
        acknowledge_guard(
            group,
            "cloudwatch_log_group_retention_period_check",
            f"the stage keeps these logs {days} days (its log_retention_days), a cost choice open to "
            f"development stages only: a production stage must keep logs {PRODUCTION_MIN_LOG_RETENTION_DAYS} "
            "days or more (stage validation)",
        )
    return group
