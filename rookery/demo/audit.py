"""What the demo says about its audit phase (``infra.audit.run.audit_stages`` over the stages it audits): one
line of numbers when every stage passes, and each failed stage's problems when one does not."""

from __future__ import annotations

from collections.abc import Sequence

from infra.audit.run import AuditResult


def audit_summary(results: Sequence[AuditResult]) -> str:
    """The phase's detail: stacks, resources and findings of each stage."""
    return "; ".join(
        f"{a.stage}: {len(a.stacks)} stacks, {a.resources} resources, {a.unacknowledged} unacknowledged, "
        f"{a.acknowledged} acknowledged with reasons"
        for a in results
    )


def audit_failure(results: Sequence[AuditResult]) -> str | None:
    """Why the phase failed (each failed stage with its problems), or None when every stage passed."""
    failed = [a for a in results if not a.passed]
    if not failed:
        return None
    reasons = "\n".join(f"stage {a.stage}: {'; '.join(a.problems)}" for a in failed)
    return f"the security audit failed for {', '.join(a.stage for a in failed)}:\n{reasons}"
