"""The dead-letter queue of an EventBridge rule's target: where events the target never took end."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_guard

QUEUE_RETENTION: Final = Duration.days(14)


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
