"""What the demo says about its audit phase (the audit run itself is tested in tests/infra)."""

from __future__ import annotations

from pathlib import Path

from infra.audit.run import AuditResult, StackSummary
from rookery.demo.audit import audit_failure, audit_summary


def _result(stage: str, *, passed: bool = True, lint_problems: tuple[str, ...] = ()) -> AuditResult:
    return AuditResult(
        stage=stage,
        synthesized=True,
        passed=passed,
        stacks=(StackSummary(f"Rookery-{stage}-Network", 40), StackSummary(f"Rookery-{stage}-Data", 60)),
        unacknowledged=0,
        acknowledged=12,
        cfn_lint_errors=len(lint_problems),
        explained_warnings=0,
        gate_passed=True,
        gate_summary="audit gate: passed (no unacknowledged finding, every acknowledgment has a reason)",
        lint_problems=lint_problems,
        report_dir=Path("/tmp/audit") / stage,
        synth_log="",
        seconds=1.0,
    )


def test_passing_stages_are_summed_up_in_one_line() -> None:
    results = [_result("dev"), _result("prod")]

    assert audit_failure(results) is None
    assert audit_summary(results) == (
        "dev: 2 stacks, 100 resources, 0 unacknowledged, 12 acknowledged with reasons; "
        "prod: 2 stacks, 100 resources, 0 unacknowledged, 12 acknowledged with reasons"
    )


def test_a_failed_stage_is_named_with_its_problems() -> None:
    problem = "cfn-lint E3012 Rookery-prod-Data.template.json: expected a string"
    results = [_result("dev"), _result("prod", passed=False, lint_problems=(problem,))]

    assert audit_failure(results) == f"the security audit failed for prod:\nstage prod: {problem}"
