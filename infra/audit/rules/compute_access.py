"""rookery's compute and access rules (I1, I2, L1): FullAccess policies and PassRole, the SageMaker
roles' permissions boundary, and EventBridge targets of Lambdas."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.template import (
    Template,
    as_list,
    condition_keys,
    flatten,
    props,
    resources,
    statements,
    target,
)


@rule(
    id="Rookery-I1",
    control="I1",
    title="No FullAccess managed policies; PassRole only with iam:PassedToService",
    fix="grant scoped actions; condition PassRole on the service",
)
def _no_full_access(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for arn in as_list(props(resource).get("ManagedPolicyArns")):
            text = flatten(arn)
            if ":aws:policy/" in text.replace("<AWS::Partition>", "aws") and "FullAccess" in text:
                yield logical_id, f"an AWS-managed FullAccess policy is attached ({text.rsplit('/', 1)[-1]})"
    for logical_id, resource in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for statement in statements(props(resource).get("PolicyDocument")):
            actions = {a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}
            passes = statement.get("Effect") == "Allow" and actions & {"iam:passrole", "iam:*", "*"}
            if passes and "iam:passedtoservice" not in condition_keys(statement):
                yield logical_id, "iam:PassRole without an iam:PassedToService condition"


# The SageMaker condition keys a SageMaker role's permissions boundary must deny on (I2).
GUARDRAIL_KEYS: Final = frozenset(
    {
        "sagemaker:vpcsubnets",
        "sagemaker:vpcsecuritygroupids",
        "sagemaker:volumekmskey",
        "sagemaker:outputkmskey",
        "sagemaker:networkisolation",
        "sagemaker:intercontainertrafficencryption",
        "sagemaker:rootaccess",
        "sagemaker:directinternetaccess",
    }
)


def _trusts(role: Mapping[str, Any], service: str) -> bool:
    for statement in statements(props(role).get("AssumeRolePolicyDocument")):
        principal = statement.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if service in [flatten(s) for s in services]:
            return True
    return False


@rule(
    id="Rookery-I2",
    control="I2",
    title="SageMaker roles' boundary denies jobs without VPC, KMS, isolation, traffic encryption",
    fix="apply the guardrails permissions boundary",
)
def _sagemaker_boundaries(template: Template) -> Iterator[tuple[str, str]]:
    policies = dict(resources(template, "AWS::IAM::ManagedPolicy"))
    for logical_id, role in resources(template, "AWS::IAM::Role"):
        if not _trusts(role, "sagemaker.amazonaws.com"):
            continue
        boundary = props(role).get("PermissionsBoundary")
        if boundary is None:
            yield logical_id, "the SageMaker role has no permissions boundary"
            continue
        policy = policies.get(target(boundary) or "")
        if policy is None:
            yield logical_id, "the SageMaker role's boundary is not in this template and cannot be checked"
            continue
        denied = {
            key
            for statement in statements(props(policy).get("PolicyDocument"))
            if statement.get("Effect") == "Deny"
            for key in condition_keys(statement)
        }
        missing = sorted(GUARDRAIL_KEYS - denied)
        if missing:
            yield logical_id, f"the SageMaker role's permissions boundary denies nothing on {missing}"


@rule(
    id="Rookery-L2",
    control="L1",
    title="EventBridge targets of Lambdas: dead-letter queue, bounded retry policy",
    fix="set the target's DeadLetterConfig and RetryPolicy",
)
def _event_targets(template: Template) -> Iterator[tuple[str, str]]:
    functions = {logical_id for logical_id, _ in resources(template, "AWS::Lambda::Function")}
    for logical_id, event_rule in resources(template, "AWS::Events::Rule"):
        for item in as_list(props(event_rule).get("Targets")):
            if target(item.get("Arn")) not in functions:
                continue
            retry = item.get("RetryPolicy") or {}
            if not (item.get("DeadLetterConfig") or {}).get("Arn"):
                yield logical_id, f"target {item.get('Id')} has no dead-letter queue: failed events vanish"
            if "MaximumRetryAttempts" not in retry or "MaximumEventAgeInSeconds" not in retry:
                yield logical_id, f"target {item.get('Id')} keeps the default retry policy (24 h, 185 tries)"
