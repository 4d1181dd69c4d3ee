"""Run a ``RulePack`` inside ``cdk synth`` as a CDK policy-validation plugin.

Findings land in the same validation report as cdk-nag's, and are acknowledged the same way
(``Rookery::<rule id>`` with a reason).
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
)

from infra.audit.rules import ROOKERY_RULES, RulePack


@jsii.implements(IPolicyValidationPlugin)
class RookeryChecks:
    """The rookery rule pack as a validation plugin (``Validations.of(app).add_plugins(RookeryChecks())``)."""

    def __init__(self, pack: RulePack = ROOKERY_RULES) -> None:
        self._pack = pack

    @property
    def name(self) -> str:
        return self._pack.name

    @property
    def version(self) -> str:
        return version("rookery")

    @property
    def rule_ids(self) -> list[str]:
        return [rule.id for rule in self._pack.rules]

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        rules = {rule.id: rule for rule in self._pack.rules}
        grouped: dict[tuple[str, str], list[PolicyViolatingResource]] = defaultdict(list)
        for path in context.template_paths:
            template = json.loads(Path(path).read_text(encoding="utf-8"))
            for finding in self._pack.evaluate(template):
                grouped[(finding.rule_id, finding.message)].append(
                    PolicyViolatingResource(
                        locations=["Properties"], resource_logical_id=finding.logical_id, template_path=path
                    )
                )
        violations = [
            PolicyViolation(
                rule_name=rule_id,
                description=f"{rules[rule_id].title}: {message} (control {rules[rule_id].control})",
                fix=rules[rule_id].fix,
                # Without an explicit severity CDK counts the violation as a success.
                severity="error",
                violating_resources=resources,
            )
            for (rule_id, message), resources in sorted(grouped.items(), key=lambda kv: kv[0])
        ]
        return PolicyValidationPluginReport(
            success=not violations, violations=violations, plugin_version=version("rookery")
        )
