"""rookery's own rule pack: checks no built-in cdk-nag pack makes, as pure functions over template JSON.

Each rule is declared once, on its check, with ``@rule(id=..., control=..., title=..., fix=...)``;
the control is an id of the catalogue (``infra.audit.controls``, published as ``docs/controls.md``).
A check yields ``(logical id, message)`` for every resource that breaks it. The checks live by
area: ``network`` (V1, V2, D2, E1), ``data`` (D1b, D3-D7), ``sagemaker`` (N1-N6, R1, H1-H2, M1),
``deployment`` (H5: the deployer's CloudFormation role), ``serving`` (H1-H5 and A1 on the
endpoint, its deployment and the API), ``pipeline`` (T1-T6) and ``compute_access`` (I1, I2, L1);
``pack`` holds the rule model and the registry. ``ROOKERY_RULES`` is the pack ``app.py``
registers; the same functions run inside ``cdk synth`` (through ``infra.audit.plugin``) and in
``rookery audit``.
"""

from __future__ import annotations

from typing import Final

from infra.audit.rules import (  # noqa: F401 - importing an area module registers its rules
    compute_access,
    data,
    deployment,
    network,
    pipeline,
    sagemaker,
    serving,
)
from infra.audit.rules.compute_access import GUARDRAIL_KEYS
from infra.audit.rules.data import EXCEPTION_REASONS, SERVICE_EXCEPTION_REASONS, service_exception_reasons
from infra.audit.rules.pack import PACK_NAME, Check, Finding, Rule, RulePack, declared, in_order, rule
from infra.audit.rules.pipeline import resolve_text

# The order CDK receives the rule ids in (``RookeryChecks.rule_ids``) and records in every template's
# CDKMetadata: the order the rules were introduced, kept so the templates do not change when a rule
# moves between modules. A new rule goes at the end.
RULE_ORDER: Final = (
    "Rookery-V1",
    "Rookery-V1b",
    "Rookery-V2",
    "Rookery-V2b",
    "Rookery-V2c",
    "Rookery-D2",
    "Rookery-D1b",
    "Rookery-D1b2",
    "Rookery-D3",
    "Rookery-D4",
    "Rookery-D5",
    "Rookery-D6",
    "Rookery-D7",
    "Rookery-N1",
    "Rookery-H1",
    "Rookery-H2",
    "Rookery-I1",
    "Rookery-N5",
    "Rookery-N6",
    "Rookery-I2",
    "Rookery-L2",
    "Rookery-T1",
    "Rookery-T2",
    "Rookery-T3",
    "Rookery-T4",
    "Rookery-T5",
    "Rookery-T6",
    "Rookery-H5",
    "Rookery-H5b",
    "Rookery-H5c",
    "Rookery-H1b",
    "Rookery-H2b",
    "Rookery-H3",
    "Rookery-H4b",
    "Rookery-H5d",
    "Rookery-H5e",
    "Rookery-A1",
    "Rookery-A1b",
    "Rookery-A1c",
    "Rookery-R1",
    "Rookery-E1",
    "Rookery-M1",
)

ROOKERY_RULES: Final = RulePack(PACK_NAME, in_order(declared(), RULE_ORDER))

__all__ = [
    "EXCEPTION_REASONS",
    "GUARDRAIL_KEYS",
    "PACK_NAME",
    "ROOKERY_RULES",
    "RULE_ORDER",
    "SERVICE_EXCEPTION_REASONS",
    "Check",
    "Finding",
    "Rule",
    "RulePack",
    "resolve_text",
    "rule",
    "service_exception_reasons",
]
