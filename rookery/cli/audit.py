"""``rookery audit --stage STAGE -o DIR``: synthesize a stage and write the security reviewer's report.

Runs ``infra.audit.run.run_audit``: synthesizes with the pinned CDK CLI exactly as ``make synth``
does (cdk-nag and rookery's rule pack run inside synth), lints every template with cfn-lint, then
writes ``report.md``, ``audit.json`` and ``audit.sarif`` into DIR (the assembly stays in
``DIR/cdk.out``). Exits 1 when any finding is unacknowledged, an acknowledgment lacks a reason, or
cfn-lint reports an error or an unexplained warning; 2 when the stage cannot be synthesized at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.audit.run import run_audit
from rookery.cli.errors import fail, reported
from rookery.cli.options import StageOption


def audit(
    stage: StageOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="directory for the report")],
) -> None:
    with reported():
        result = run_audit(stage, output)
    if not result.synthesized:
        fail(f"cdk synth failed for stage {stage!r}:\n{result.synth_log.strip()}")
    verdict = "passed" if result.passed else "FAILED"
    typer.echo(
        f"rookery audit {stage}: {verdict} ({result.unacknowledged} unacknowledged, "
        f"{result.acknowledged} acknowledged with reasons, {result.cfn_lint_errors} cfn-lint errors); "
        f"report: {result.report_path}"
    )
    if not result.passed:
        typer.echo(result.gate_summary, err=True)
        for problem in result.lint_problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1)
