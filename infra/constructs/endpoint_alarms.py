"""Control H5: the rollback alarms SageMaker watches during a blue/green deployment.

Each alarm is built from a pure ``stage.alarms.RollbackAlarm`` (which can also be evaluated away from
CloudWatch), with the fixed name the endpoint's deployment config lists. They exist only
under ``condition``, like the endpoint whose metrics they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aws_cdk import CfnCondition
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.audit.acknowledge import acknowledge
from infra.audit.guard import guard_id
from infra.constructs.props import PropsError
from stage.alarms import RollbackAlarm


@dataclass(frozen=True, kw_only=True)
class RollbackAlarmsProps:
    alarms: tuple[RollbackAlarm, ...]

    def __post_init__(self) -> None:
        if not self.alarms:
            raise PropsError(self, "alarms", "a deployment needs at least one rollback alarm")
        names = [a.name for a in self.alarms]
        if len(set(names)) != len(names):
            raise PropsError(self, "alarms", f"names {names} repeat; each alarm needs its own name")


class EndpointRollbackAlarms(Construct):
    """Exposes ``alarms``: the ``CfnAlarm`` of each purpose (``errors``, ``model_latency``, ...)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, props: RollbackAlarmsProps, condition: CfnCondition
    ) -> None:
        super().__init__(scope, construct_id)
        alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for alarm in props.alarms:
            percentile = alarm.percentile is not None
            resource = cloudwatch.CfnAlarm(
                self,
                "".join(word.capitalize() for word in alarm.purpose.split("_")),
                alarm_name=alarm.name,
                alarm_description=(
                    f"rollback: {alarm.statistic} of {alarm.metric} above {alarm.threshold:g} ({alarm.unit}) "
                    f"in {alarm.datapoints_to_alarm} of {alarm.evaluation_periods} periods of "
                    f"{alarm.period_seconds} s"
                ),
                namespace=alarm.namespace,
                metric_name=alarm.metric,
                dimensions=[
                    cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in alarm.dimensions
                ],
                # A percentile is an extended statistic in CloudWatch.
                statistic=None if percentile else alarm.statistic,
                extended_statistic=alarm.statistic if percentile else None,
                threshold=alarm.threshold,
                comparison_operator=alarm.comparison,
                period=alarm.period_seconds,
                evaluation_periods=alarm.evaluation_periods,
                datapoints_to_alarm=alarm.datapoints_to_alarm,
                treat_missing_data=alarm.treat_missing_data,
            )
            resource.cfn_options.condition = condition
            for rule_id in (
                "NIST.800.53.R5::NIST.800.53.R5-CloudWatchAlarmAction",
                guard_id("cloudwatch_alarm_action_check"),
            ):
                acknowledge(
                    resource,
                    rule_id,
                    f"{alarm.name} exists to stop a blue/green deployment: SageMaker watches it during every "
                    "update of the endpoint and rolls back when it fires; it notifies nobody by itself",
                )
            alarms[alarm.purpose] = resource
        self.alarms: Mapping[str, cloudwatch.CfnAlarm] = MappingProxyType(alarms)
