"""The audit gate: a synthesized assembly passes only with zero unacknowledged findings and a real
reason behind every acknowledgment.

Pure (reads the assembly). ``app.py`` runs it after every synth, ``rookery audit`` reports it,
and the tests prove that a finding without a reason fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.audit.assembly import Acknowledgment, Assembly, Violation
from infra.audit.exceptions import PACKS, acknowledgment_problems


@dataclass(frozen=True)
class GateResult:
    violations: tuple[Violation, ...]
    problems: tuple[str, ...]  # bad, stale or unreasoned acknowledgments; assembly problems

    @property
    def ok(self) -> bool:
        return not self.violations and not self.problems

    def summary(self) -> str:
        if self.ok:
            return "audit gate: passed (no unacknowledged finding, every acknowledgment has a reason)"
        lines = [
            f"audit gate: FAILED ({len(self.violations)} unacknowledged findings, "
            f"{len(self.problems)} problems)"
        ]
        lines += [f"  - {v.rule_id} at {v.construct_path}: {v.description}" for v in self.violations]
        lines += [f"  - {p}" for p in self.problems]
        lines.append("Fix the resource, or acknowledge the finding on its construct with a specific reason.")
        return "\n".join(lines)


def evaluate(assembly: Assembly) -> GateResult:
    problems: list[str] = []
    if not assembly.has_report:
        problems.append(
            "no validation report: the audit packs were not registered (infra.app.register_audit)"
        )
    if assembly.missing_context:
        problems.append(
            f"synth needed AWS lookups {list(assembly.missing_context)}; "
            "commit their values to cdk.context.json"
        )
    used = {(s.acknowledged_id, s.acknowledged_at) for s in assembly.suppressed}
    for ack in assembly.acknowledgments:
        problems += _check(ack, used)
    for suppressed in assembly.suppressed:
        if not suppressed.reason.strip():
            problems.append(
                f"{suppressed.acknowledged_id} at {suppressed.acknowledged_at} "
                "suppresses a finding without a reason"
            )
    return GateResult(violations=assembly.violations, problems=tuple(dict.fromkeys(problems)))


def _check(ack: Acknowledgment, used: set[tuple[str, str]]) -> list[str]:
    where = f" (at {ack.construct_path})"
    namespace = ack.namespace
    if namespace in PACKS:
        problems = [p + where for p in acknowledgment_problems(ack.rule_id, ack.reason)]
        if (ack.rule_id, ack.construct_path) not in used:
            problems.append(f"{ack.rule_id}{where} acknowledges nothing (stale); remove it")
        return problems
    rule = ack.rule_id.split("::", 1)[-1]
    if any(rule.startswith(f"{pack}-") for pack in PACKS):
        # Without the pack prefix, cdk-nag drops the finding before it reaches the report.
        return [p + where for p in acknowledgment_problems(rule, ack.reason)]
    if not ack.reason.strip():
        return [f"{ack.rule_id}{where}: the reason is empty"]
    return []
