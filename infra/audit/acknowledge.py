"""Record an accepted finding on one construct, refusing ids and reasons a reviewer would reject."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

from infra.audit.exceptions import acknowledgment_problems
from infra.audit.guard import CROSS_STACK_RULES, guard_id


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """``Validations.of(scope).acknowledge(...)`` with the id in ``Pack::Rule`` form and a specific reason.

    Acknowledge on the narrowest construct the finding is about: it covers that construct and
    everything below it.
    """
    problems = acknowledgment_problems(rule_id, reason)
    if problems:
        raise ValueError(f"cannot acknowledge at {scope.node.path}: " + "; ".join(problems))
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


INLINE_POLICY = "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy"


def acknowledge_inline_policy(role: IConstruct, reason: str) -> None:
    """Accept NIST's ``IAMNoInlinePolicy`` on ``role``'s default policy; ``reason`` says why that policy
    belongs to the role alone (a managed copy could be attached to other principals)."""
    acknowledge(role.node.find_child("DefaultPolicy"), INLINE_POLICY, reason)


def acknowledge_guard(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept a Control Tower guard finding (``cdk-validator-cfnguard::<rule>``) with its reason."""
    acknowledge(scope, guard_id(rule), reason)


def acknowledge_cross_stack(scope: IConstruct, rule: str, referenced: IConstruct) -> None:
    """Accept a guard finding on ``scope`` that only its reference to ``referenced`` causes
    (``infra.audit.guard``): nothing is acknowledged when both live in one stack, for then the rule
    can read the reference and must pass.
    """
    if rule not in CROSS_STACK_RULES:
        raise ValueError(f"{rule!r} is not a guard rule known to misread cross-stack references")
    if Stack.of(referenced).node.path != Stack.of(scope).node.path:
        acknowledge_guard(scope, rule, CROSS_STACK_RULES[rule].reason)


def flatten_reference(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it into a finding id (its ``flattenCfnReference``):
    ``Fn::Join`` joined, ``Ref`` as ``<Name>``, ``Fn::GetAtt`` as ``<Name.Attr>``, ``${X}`` as ``<X>``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_reference(i) for i in items)
        if "Fn::Sub" in value:
            return flatten_reference(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten_reference(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten_reference(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"))


def wildcard_findings(scope: IConstruct, actions: Iterable[str], resources: Iterable[str]) -> list[str]:
    """The ``AwsSolutions-IAM5`` finding ids an allow statement with these actions and resources raises."""
    stack = Stack.of(scope)
    ids = [f"AwsSolutions::AwsSolutions-IAM5[Action::{a}]" for a in actions if "*" in a]
    for resource in resources:
        flat = flatten_reference(stack.resolve(resource))
        if "*" in flat:
            ids.append(f"AwsSolutions::AwsSolutions-IAM5[Resource::{flat}]")
    return ids
