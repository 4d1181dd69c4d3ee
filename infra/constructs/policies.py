"""Hand-written IAM statements with their reasons, in one shape for every rookery role.

A ``Grant`` is one allow statement and why it exists. ``attach`` adds grants to a role and
acknowledges each wildcard they contain (cdk-nag's ``AwsSolutions-IAM5``) with the reasons of
the grants that carry it, so an exception and its reason are written once, next to the statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_iam as iam

from infra.audit.acknowledge import acknowledge, wildcard_findings


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str  # why the role needs it; also the reason for any wildcard in it
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=self.sid,
            actions=list(self.actions),
            resources=list(self.resources),
            conditions=dict(self.conditions) or None,
        )


def attach(role: iam.Role, grants: Sequence[Grant], *, granted_wildcards: Mapping[str, str] = {}) -> None:
    """Add ``grants`` to ``role`` and acknowledge their wildcards on its default policy.

    ``granted_wildcards`` acknowledges wildcard actions that ``grant*()`` calls added (finding id ->
    reason), since those statements are not written here.
    """
    if not grants:
        raise ValueError(f"no grants for {role.node.path}")
    reasons: dict[str, list[str]] = {}
    for grant in grants:
        role.add_to_policy(grant.statement())
        for finding in wildcard_findings(role, grant.actions, grant.resources):
            reasons.setdefault(finding, []).append(grant.reason)
    for finding, reason in granted_wildcards.items():
        reasons.setdefault(finding, []).append(reason)
    policy = role.node.find_child("DefaultPolicy")
    for finding, texts in sorted(reasons.items()):
        acknowledge(policy, finding, "; ".join(dict.fromkeys(texts)))
