"""``rookery audit --stage STAGE -o DIR``: synthesize a stage and write the security reviewer's report.

Synthesizes with the pinned CDK CLI exactly as ``make synth`` does (cdk-nag and rookery's rule
pack run inside synth), lints every template with cfn-lint, then writes ``report.md``,
``audit.json`` and ``audit.sarif`` into DIR (the assembly stays in ``DIR/cdk.out``). Exits 1
when any finding is unacknowledged, an acknowledgment lacks a reason, or cfn-lint reports an
error or an unexplained warning; 2 when the stage cannot be synthesized at all.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from infra.audit.assembly import AssemblyError, read_assembly
from infra.audit.cfnlint import lint_templates
from infra.audit.gate import evaluate
from infra.audit.report import build_report, render_markdown, render_sarif
from stage import REPO_ROOT, ConfigError, load_stage

CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def synth_environment() -> dict[str, str]:
    """What ``make`` gives ``cdk``: the venv's Node first, CDK's own validator off (cfn-lint runs instead)."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, str(CDK_CLI.parent), os.environ.get("PATH", "")]),
        "CDK_VALIDATION": "false",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_CLI_NOTICES": "false",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }


def synthesize(stage: str, outdir: Path) -> subprocess.CompletedProcess[str]:
    if not CDK_CLI.exists():
        raise FileNotFoundError(f"{CDK_CLI} is missing; run `make setup`")
    if outdir.exists():
        shutil.rmtree(outdir)  # never report on a previous run's templates
    return subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "-c", f"stage={stage}", "-o", str(outdir)],
        cwd=REPO_ROOT,
        env=synth_environment(),
        capture_output=True,
        text=True,
        check=False,
    )


def tool_versions() -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def run(*cmd: str) -> str:
        try:
            done = subprocess.run(
                cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=synth_environment()
            )
        except FileNotFoundError:
            return "unavailable"
        return done.stdout.strip() if done.returncode == 0 else "unavailable"

    cli = REPO_ROOT / "node_modules" / "aws-cdk" / "package.json"
    commit = run("git", "rev-parse", "HEAD")
    dirty = run("git", "status", "--porcelain")
    return {
        "commit": f"{commit}{' (uncommitted changes)' if dirty not in ('', 'unavailable') else ''}",
        "rookery": dist("rookery"),
        "python": platform.python_version(),
        "node": run("node", "--version"),
        "aws-cdk (CLI)": json.loads(cli.read_text())["version"] if cli.is_file() else "not installed",
        "aws-cdk-lib": dist("aws-cdk-lib"),
        "constructs": dist("constructs"),
        "cdk-nag": dist("cdk-nag"),
        "cfn-lint": dist("cfn-lint"),
    }


def audit(
    stage: Annotated[str, typer.Option("--stage", help="stage to audit (a file under infra/stages/)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="directory for the report")],
) -> None:
    try:
        settings = load_stage(stage)
    except ConfigError as error:
        typer.echo(f"rookery audit: {error}", err=True)
        raise typer.Exit(2) from None
    output.mkdir(parents=True, exist_ok=True)
    assembly_dir = output / "cdk.out"
    done = synthesize(stage, assembly_dir)
    try:
        assembly = read_assembly(assembly_dir)
    except AssemblyError:
        typer.echo(f"rookery audit: cdk synth failed for stage {stage!r}:\n{done.stderr.strip()}", err=True)
        raise typer.Exit(2) from None
    gate = evaluate(assembly)
    lint = lint_templates([s.template_path for s in assembly.stacks], regions=[settings.region])
    report = build_report(stage=stage, assembly=assembly, gate=gate, lint=lint, versions=tool_versions())
    (output / "audit.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (output / "audit.sarif").write_text(json.dumps(render_sarif(report), indent=2) + "\n", encoding="utf-8")
    (output / "report.md").write_text(render_markdown(report), encoding="utf-8")
    verdict = "passed" if report["passed"] else "FAILED"
    typer.echo(
        f"rookery audit {stage}: {verdict} ({len(gate.violations)} unacknowledged, "
        f"{len(assembly.suppressed)} acknowledged with reasons, {len(lint.errors)} cfn-lint errors); "
        f"report: {output / 'report.md'}"
    )
    if not report["passed"]:
        typer.echo(gate.summary(), err=True)
        for finding in (*lint.errors, *lint.unexplained_warnings):
            typer.echo(f"  - cfn-lint {finding.rule_id} {finding.template}: {finding.message}", err=True)
        raise typer.Exit(1)
