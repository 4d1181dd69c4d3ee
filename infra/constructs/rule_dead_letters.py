"""EventBridge rules whose target's undelivered events end in a dead-letter queue of their own, with
one bounded delivery policy for every rule of rookery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_guard

QUEUE_RETENTION: Final = Duration.days(14)
# EventBridge's delivery to a rule's target: bounded, then the rule's queue.
RULE_RETRIES: Final = 4
RULE_MAX_AGE: Final = Duration.hours(2)


@dataclass(frozen=True)
class DeadLetteredRule:
    rule: events.Rule
    dead_letter_queue: sqs.Queue
    arn: str  # known before deployment, for trust and key conditions

    def delivery(self) -> dict[str, Any]:
        """The keyword arguments every target of the rule takes: bounded retries, then the queue."""
        return {
            "dead_letter_queue": self.dead_letter_queue,
            "retry_attempts": RULE_RETRIES,
            "max_event_age": RULE_MAX_AGE,
        }


def dead_lettered_rule(
    scope: Construct,
    rule_id: str,
    queue_id: str,
    *,
    rule_name: str,
    description: str,
    event_pattern: events.EventPattern,
    queue_key: kms.IKey,
    sid: str,
    rule: str,
) -> DeadLetteredRule:
    """The rule ``rule_name`` and its dead-letter queue (:func:`rule_dead_letter_queue`), both in
    ``scope``; add the target with :meth:`DeadLetteredRule.delivery`."""
    arn = Stack.of(scope).format_arn(service="events", resource="rule", resource_name=rule_name)
    queue = rule_dead_letter_queue(scope, queue_id, queue_key=queue_key, rule_arn=arn, sid=sid, rule=rule)
    created = events.Rule(
        scope, rule_id, rule_name=rule_name, description=description, event_pattern=event_pattern
    )
    return DeadLetteredRule(created, queue, arn)


def rule_dead_letter_queue(
    scope: Construct, construct_id: str, *, queue_key: kms.IKey, rule_arn: str, sid: str, rule: str
) -> sqs.Queue:
    """A KMS-encrypted, TLS-only queue for the rule ``rule_arn``; only that rule may encrypt into it.

    ``rule`` says which rule it serves, in the acknowledgements' reasons.
    """
    # EventBridge encrypts what it dead-letters with the queue's key: only this rule may.
    queue_key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=["*"],  # in a key policy, "*" means this key
            conditions={"ArnEquals": {"aws:SourceArn": rule_arn}},
        )
    )
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=queue_key,
        enforce_ssl=True,
        retention_period=QUEUE_RETENTION,
    )
    reason = (
        f"this queue is the dead-letter queue of the {rule}'s target (the packs recognize only SQS "
        "redrive and Lambda DLQs); a dead-letter queue of a dead-letter queue would add nothing"
    )
    acknowledge(queue, "AwsSolutions::AwsSolutions-SQS3", reason)
    acknowledge_guard(queue, "sqs_dlq_check", reason)
    return queue
