"""The audit run of a stage: synthesize every stack with the pinned CDK CLI (cdk-nag and rookery's
rule pack run inside synth), evaluate the gate, lint every template with cfn-lint and write the
reviewer's report (``report.md``, ``audit.json``, ``audit.sarif``) beside the assembly.

``rookery audit`` runs it for one stage, ``rookery demo`` for every stage (the synths side by
side). Results are plain data; nothing prints.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.audit.assembly import AssemblyError, read_assembly
from infra.audit.cfnlint import lint_templates
from infra.audit.gate import evaluate
from infra.audit.guard import GUARD_PLUGIN
from infra.audit.report import build_report, render_markdown, render_sarif
from stage import REPO_ROOT, load_stage

CDK_CLI: Final = REPO_ROOT / "node_modules" / ".bin" / "cdk"
ASSEMBLY_DIR: Final = "cdk.out"  # inside the report folder
REPORT_FILE: Final = "report.md"
SYNTH_LOG_LINES: Final = 20  # of cdk's stderr, kept in the problem of a stage that did not synthesize


class AuditError(Exception):
    """The audit cannot run at all (a tool is missing); the message names the fix."""


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
    """``cdk synth`` of every stack of ``stage`` into ``outdir`` (emptied first), as ``make synth`` does."""
    if not CDK_CLI.exists():
        raise AuditError(f"{CDK_CLI} is missing; run `make setup`")
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
    """The commit and every tool whose version changes what the audit finds (recorded in the report)."""

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
        GUARD_PLUGIN: dist(GUARD_PLUGIN),
        "cfn-lint": dist("cfn-lint"),
    }


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int


@dataclass(frozen=True)
class AuditResult:
    """One stage's audit verdict; ``problems`` says what failed and how to fix it."""

    stage: str
    synthesized: bool  # False: cdk synth left no assembly (``synth_log`` says why); nothing was audited
    passed: bool
    stacks: tuple[StackSummary, ...]
    unacknowledged: int
    acknowledged: int
    cfn_lint_errors: int
    explained_warnings: int
    gate_passed: bool
    gate_summary: str  # the gate's verdict, one line per unacknowledged finding or problem
    lint_problems: tuple[str, ...]  # one line per cfn-lint error or unexplained warning
    report_dir: Path
    synth_log: str  # cdk's stderr
    seconds: float

    @property
    def problems(self) -> tuple[str, ...]:
        if not self.synthesized:
            tail = "\n".join(self.synth_log.strip().splitlines()[-SYNTH_LOG_LINES:])
            return (f"cdk synth failed for stage {self.stage!r}:\n{tail}",)
        return (*(() if self.gate_passed else (self.gate_summary,)), *self.lint_problems)

    @property
    def report_path(self) -> Path:
        return self.report_dir / REPORT_FILE

    @property
    def assembly_dir(self) -> Path:
        return self.report_dir / ASSEMBLY_DIR

    @property
    def resources(self) -> int:
        return sum(s.resources for s in self.stacks)


def audit_assembly(
    stage: str,
    report_dir: Path,
    *,
    region: str,
    versions: Mapping[str, str],
    synth_log: str,
    synth_seconds: float = 0.0,
) -> AuditResult:
    """Gate, cfn-lint and report files for the assembly synthesized into ``report_dir/cdk.out``
    (``synth_log`` and ``synth_seconds``: what that synth printed and took)."""
    started = time.monotonic() - synth_seconds
    try:
        assembly = read_assembly(report_dir / ASSEMBLY_DIR)
    except AssemblyError:
        return AuditResult(
            stage=stage,
            synthesized=False,
            passed=False,
            stacks=(),
            unacknowledged=0,
            acknowledged=0,
            cfn_lint_errors=0,
            explained_warnings=0,
            gate_passed=False,
            gate_summary="",
            lint_problems=(),
            report_dir=report_dir,
            synth_log=synth_log,
            seconds=time.monotonic() - started,
        )
    gate = evaluate(assembly)
    lint = lint_templates([s.template_path for s in assembly.stacks], regions=[region])
    report = build_report(stage=stage, assembly=assembly, gate=gate, lint=lint, versions=versions)
    (report_dir / "audit.json").write_text(
        json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (report_dir / "audit.sarif").write_text(
        json.dumps(render_sarif(report), indent=2) + "\n", encoding="utf-8"
    )
    (report_dir / REPORT_FILE).write_text(render_markdown(report), encoding="utf-8")
    return AuditResult(
        stage=stage,
        synthesized=True,
        passed=bool(report["passed"]),
        stacks=tuple(StackSummary(s["name"], s["resources"]) for s in report["stacks"]),
        unacknowledged=len(gate.violations),
        acknowledged=len(assembly.suppressed),
        cfn_lint_errors=len(lint.errors),
        explained_warnings=len(lint.kept_warnings),
        gate_passed=gate.ok,
        gate_summary=gate.summary(),
        lint_problems=tuple(
            f"cfn-lint {f.rule_id} {f.template}: {f.message}"
            for f in (*lint.errors, *lint.unexplained_warnings)
        ),
        report_dir=report_dir,
        synth_log=synth_log,
        seconds=time.monotonic() - started,
    )


def _synthesize_into(stage: str, report_dir: Path) -> tuple[str, float]:
    """Synthesize into ``report_dir/cdk.out``: cdk's stderr and the seconds it took."""
    started = time.monotonic()
    report_dir.mkdir(parents=True, exist_ok=True)
    done = synthesize(stage, report_dir / ASSEMBLY_DIR)
    return done.stderr, time.monotonic() - started


def run_audit(stage: str, out_dir: Path, *, versions: Mapping[str, str] | None = None) -> AuditResult:
    """Synthesize ``stage`` into ``out_dir/cdk.out`` and audit it; the report files go to ``out_dir``.

    A stage that cannot be loaded raises ``ConfigError`` before anything is written.
    """
    region = load_stage(stage).region
    synth_log, synth_seconds = _synthesize_into(stage, out_dir)
    return audit_assembly(
        stage,
        out_dir,
        region=region,
        versions=versions or tool_versions(),
        synth_log=synth_log,
        synth_seconds=synth_seconds,
    )


def audit_stages(
    stages: Sequence[str],
    out: Path,
    *,
    parallel: int | None = None,
    on_stage: Callable[[AuditResult], None] | None = None,
) -> list[AuditResult]:
    """The audit of each stage into ``out/<stage>/``: the synths run ``parallel`` at a time
    (default: the usable cores), the audits one after another in the order given.

    Every stage is loaded first: a bad stage file raises ``ConfigError`` before any synth.
    """
    regions = {name: load_stage(name).region for name in stages}
    # cfn-lint logs every template it scans at INFO; the verdict is what matters.
    logging.getLogger("cfnlint").setLevel(logging.WARNING)
    versions = tool_versions()
    workers = max(1, min(len(stages), parallel or len(os.sched_getaffinity(0))))
    results: list[AuditResult] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        synths = [pool.submit(_synthesize_into, name, out / name) for name in stages]
        for name, future in zip(stages, synths, strict=True):
            synth_log, synth_seconds = future.result()
            result = audit_assembly(
                name,
                out / name,
                region=regions[name],
                versions=versions,
                synth_log=synth_log,
                synth_seconds=synth_seconds,
            )
            results.append(result)
            if on_stage:
                on_stage(result)
    return results
