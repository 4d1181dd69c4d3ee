"""What starts the pipeline: the ``pipeline_trigger`` Lambda (L1), fed by an EventBridge rule on the raw
bucket's "Object Created" events and, where the stage's monitoring reaction is ``retrain``, by a
second rule on the monitoring alarms' changes into ALARM.

- The object rule pre-filters on the raw bucket's name and the dataset's key prefix, so Firehose's
  error output and other prefixes never invoke the function (the function ignores them too).
- The retrain rule matches "CloudWatch Alarm State Change" events of exactly the stage's monitoring
  alarms (named from the stage, so this stack needs no reference to the Serving stack that creates
  them) whose new state is ALARM. The function starts a run on the dataset's prefix, once per
  transition and not while a run it started is younger than the stage's minimum interval.
- EventBridge invokes the function asynchronously with a bounded retry policy and a KMS-encrypted
  dead-letter queue per rule; the function's asynchronous invocations retry twice within an hour
  and then land in its KMS-encrypted dead-letter queue. The handler is idempotent, so retries start
  nothing twice, and a malformed event fails fast into the queue (no retry storm).
- EventBridge may invoke the function only for these rules (each permission names its rule's ARN).
  The function may call ``StartPipelineExecution`` and ``ListPipelineExecutions`` on the stage's
  pipeline only, with a small reserved concurrency.

None of this is optional; ``TriggerProps`` carries the names, the prefixes, log retention and, for the
retrain rule, ``RetrainProps``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import FunctionProps, ProjectFunction
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS
from infra.constructs.props import PropsError, check_prefix, check_qualifier, check_retention
from infra.constructs.rule_dead_letters import dead_lettered_rule
from pipelines.parameters import INPUT_DATA_URI
from rookery_contracts.env import (
    DATA_PREFIX_ENV,
    ERROR_PREFIX_ENV,
    INPUT_PARAMETER_ENV,
    PIPELINE_NAME_ENV,
    RAW_BUCKET_ENV,
    RETRAIN_ALARMS_ENV,
    RETRAIN_INTERVAL_ENV,
)
from rookery_contracts.pipeline import ALARM_EVENT_SOURCE, ALARM_EVENT_TYPE, ALARM_STATE

TRIGGER: Final = "pipeline_trigger"
# One execution per new object; a burst of uploads needs no more than a few concurrent starts.
TRIGGER_CONCURRENCY: Final = 2
# Asynchronous invocation: Lambda retries a failed event twice within an hour, then dead-letters it.
ASYNC_RETRIES: Final = 2
ASYNC_MAX_AGE: Final = Duration.hours(1)


@dataclass(frozen=True, kw_only=True)
class RetrainProps:
    """The monitoring alarms whose change into ALARM starts a run, at most one per interval."""

    rule_name: str  # named, so the queue key's policy can name the one rule that may use it
    alarm_names: tuple[str, ...]
    min_interval_hours: int

    def __post_init__(self) -> None:
        if not self.rule_name:
            raise PropsError(self, "rule_name", "name the rule, e.g. 'rookery-prod-monitoring-alarm-retrain'")
        if not self.alarm_names or len(set(self.alarm_names)) != len(self.alarm_names):
            raise PropsError(self, "alarm_names", "name each monitoring alarm once (stage.names)")
        if self.min_interval_hours < 1:
            raise PropsError(
                self, "min_interval_hours", "retraining runs need at least an hour between them; raise it"
            )


@dataclass(frozen=True, kw_only=True)
class TriggerProps:
    qualifier: str
    rule_name: str  # named, so the queue key's policy can name the one rule that may use it
    pipeline_name: str
    pipeline_arn: str  # the function may start this pipeline and nothing else
    data_prefix: str  # new objects under this prefix of the raw bucket start the pipeline
    error_prefix: str  # Firehose's failed records, never a reason to start it
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of the function's (KMS-encrypted) logs."""
    retrain: RetrainProps | None = None
    """None (the default): the monitoring alarms only notify, and no alarm reaches the function."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        if not self.rule_name:
            raise PropsError(self, "rule_name", "name the rule, e.g. 'rookery-dev-raw-object-created'")
        if not self.pipeline_name or not self.pipeline_arn:
            field = "pipeline_name" if not self.pipeline_name else "pipeline_arn"
            raise PropsError(self, field, "pass the TrainingPipeline's pipeline_name and pipeline_arn")
        check_prefix(self, "data_prefix")
        check_prefix(self, "error_prefix")
        if self.error_prefix.startswith(self.data_prefix) or self.data_prefix.startswith(self.error_prefix):
            raise PropsError(
                self,
                "error_prefix",
                f"overlaps data_prefix = {self.data_prefix!r}: failed records would start the pipeline; "
                "give failed records a prefix of their own, e.g. 'errors/'",
            )
        check_retention(self)
        if self.retrain and self.retrain.rule_name == self.rule_name:
            raise PropsError(
                self, "retrain", f"names the object rule {self.rule_name!r}; give it a name of its own"
            )


class PipelineTrigger(Construct):
    """Exposes ``function`` (a ``ProjectFunction``), ``rule`` and ``rule_dead_letter_queue``, and
    ``retrain_rule`` and ``retrain_dead_letter_queue`` (None unless ``props.retrain``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: TriggerProps,
        raw_bucket: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        logs_key: kms.IKey,
        queue_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        data_prefix = props.data_prefix
        self.function = ProjectFunction(
            self,
            "Function",
            props=FunctionProps(
                qualifier=props.qualifier,
                name=TRIGGER,
                handler=f"{TRIGGER}.handler.lambda_handler",
                description=(
                    f"{props.qualifier}: start {props.pipeline_name} once per new object in {data_prefix}"
                ),
                reserved_concurrency=TRIGGER_CONCURRENCY,
                environment={
                    PIPELINE_NAME_ENV: props.pipeline_name,
                    DATA_PREFIX_ENV: data_prefix,
                    ERROR_PREFIX_ENV: props.error_prefix,
                    INPUT_PARAMETER_ENV: INPUT_DATA_URI,
                    **self._retrain_environment(props.retrain, raw_bucket),
                },
                log_retention_days=props.log_retention_days,
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            logs_key=logs_key,
            queue_key=queue_key,
        )
        function = self.function.function
        function.configure_async_invoke(retry_attempts=ASYNC_RETRIES, max_event_age=ASYNC_MAX_AGE)
        self.function.role.add_to_policy(
            iam.PolicyStatement(
                sid="StartStagePipelineOnce",
                actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                resources=[props.pipeline_arn],
            )
        )

        made = dead_lettered_rule(
            self,
            "Rule",
            "RuleDeadLetterQueue",
            rule_name=props.rule_name,
            description=f"{props.qualifier}: new raw objects under {data_prefix} start the pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [raw_bucket.bucket_name]},
                    "object": {"key": [{"prefix": data_prefix}]},
                },
            ),
            queue_key=queue_key,
            sid="EventBridgeRuleDeadLetters",
            rule="EventBridge rule",
        )
        self.rule, self.rule_dead_letter_queue = made.rule, made.dead_letter_queue
        self.rule.add_target(targets.LambdaFunction(function, **made.delivery()))
        self.retrain_rule: events.Rule | None = None
        self.retrain_dead_letter_queue: sqs.Queue | None = None
        if props.retrain:
            self._add_retrain_rule(props.qualifier, props.retrain, queue_key)

    @staticmethod
    def _retrain_environment(retrain: RetrainProps | None, raw_bucket: s3.IBucket) -> dict[str, str]:
        """What the function reads to retrain on an alarm; its run reads the raw bucket's dataset
        prefix, the same bucket the pipeline's default input names."""
        if retrain is None:
            return {}
        return {
            RAW_BUCKET_ENV: raw_bucket.bucket_name,
            RETRAIN_ALARMS_ENV: json.dumps(list(retrain.alarm_names)),
            RETRAIN_INTERVAL_ENV: str(retrain.min_interval_hours),
        }

    def _add_retrain_rule(self, qualifier: str, retrain: RetrainProps, queue_key: kms.IKey) -> None:
        made = dead_lettered_rule(
            self,
            "RetrainRule",
            "RetrainRuleDeadLetterQueue",
            rule_name=retrain.rule_name,
            description=(
                f"{qualifier}: a monitoring alarm entering {ALARM_STATE} starts the pipeline (at most once "
                f"per {retrain.min_interval_hours} h)"
            ),
            event_pattern=events.EventPattern(
                source=[ALARM_EVENT_SOURCE],
                detail_type=[ALARM_EVENT_TYPE],
                detail={"alarmName": list(retrain.alarm_names), "state": {"value": [ALARM_STATE]}},
            ),
            queue_key=queue_key,
            sid="EventBridgeRetrainRuleDeadLetters",
            rule="monitoring alarm retrain rule",
        )
        self.retrain_rule, self.retrain_dead_letter_queue = made.rule, made.dead_letter_queue
        self.retrain_rule.add_target(targets.LambdaFunction(self.function.function, **made.delivery()))
