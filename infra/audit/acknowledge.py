"""Record an accepted finding on one construct, refusing ids and reasons a reviewer would reject."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

from infra.audit.exceptions import acknowledgment_problems


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """``Validations.of(scope).acknowledge(...)`` with the id in ``Pack::Rule`` form and a specific reason.

    Acknowledge on the narrowest construct the finding is about: it covers that construct and
    everything below it.
    """
    problems = acknowledgment_problems(rule_id, reason)
    if problems:
        raise ValueError(f"cannot acknowledge at {scope.node.path}: " + "; ".join(problems))
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
