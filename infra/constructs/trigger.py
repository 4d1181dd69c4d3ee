"""New raw data starts the pipeline: an EventBridge rule on the raw bucket's "Object Created" events and
the ``pipeline_trigger`` Lambda (L1).

- The rule pre-filters on the raw bucket's name and the dataset's key prefix, so Firehose's error
  output and other prefixes never invoke the function (the function ignores them too).
- EventBridge invokes the function asynchronously with a bounded retry policy and its own
  KMS-encrypted dead-letter queue; the function's asynchronous invocations retry twice within an
  hour and then land in its KMS-encrypted dead-letter queue. The handler is idempotent, so
  retries start nothing twice, and a malformed event fails fast into the queue (no retry storm).
- The function may call ``StartPipelineExecution`` and ``ListPipelineExecutions`` on the stage's
  pipeline only, with a small reserved concurrency.

None of this is optional; ``TriggerProps`` carries the names, the prefixes and log retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.function import FunctionProps, ProjectFunction
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS
from infra.constructs.props import PropsError, check_prefix, check_qualifier, check_retention
from infra.constructs.rule_dead_letters import rule_dead_letter_queue
from pipelines.parameters import INPUT_DATA_URI
from rookery_contracts.env import DATA_PREFIX_ENV, ERROR_PREFIX_ENV, INPUT_PARAMETER_ENV, PIPELINE_NAME_ENV

TRIGGER: Final = "pipeline_trigger"
# One execution per new object; a burst of uploads needs no more than a few concurrent starts.
TRIGGER_CONCURRENCY: Final = 2
# Asynchronous invocation: Lambda retries a failed event twice within an hour, then dead-letters it.
ASYNC_RETRIES: Final = 2
ASYNC_MAX_AGE: Final = Duration.hours(1)
# EventBridge's own delivery to the function (throttling, service errors): bounded, then its queue.
RULE_RETRIES: Final = 4
RULE_MAX_AGE: Final = Duration.hours(2)


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


class PipelineTrigger(Construct):
    """Exposes ``function`` (a ``ProjectFunction``), ``rule`` and ``rule_dead_letter_queue``."""

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
        stack = Stack.of(self)
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

        rule_name = props.rule_name
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
        self.rule_dead_letter_queue = rule_dead_letter_queue(
            self,
            "RuleDeadLetterQueue",
            queue_key=queue_key,
            rule_arn=rule_arn,
            sid="EventBridgeRuleDeadLetters",
            rule="EventBridge rule",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=rule_name,
            description=f"{props.qualifier}: new raw objects under {data_prefix} start the pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [raw_bucket.bucket_name]},
                    "object": {"key": [{"prefix": data_prefix}]},
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                dead_letter_queue=self.rule_dead_letter_queue,
                retry_attempts=RULE_RETRIES,
                max_event_age=RULE_MAX_AGE,
            )
        )
