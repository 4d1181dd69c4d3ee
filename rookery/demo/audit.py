"""Synthesize and audit every stage for the demo, with ``rookery audit``'s own functions.

One ``cdk synth`` per stage (the stages synthesize side by side, each in its own assembly folder),
then the same gate, cfn-lint pass and report files as ``rookery audit --stage S -o DIR``:
``report.md``, ``audit.json`` and ``audit.sarif`` in ``<out>/<stage>/`` (the assembly in its
``cdk.out``). The result per stage is plain data for the terminal and the HTML report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from infra.audit.assembly import AssemblyError, read_assembly
from infra.audit.cfnlint import lint_templates
from infra.audit.gate import evaluate
from infra.audit.report import build_report, render_markdown, render_sarif
from rookery.cli.audit import synthesize, tool_versions
from stage import load_stage


@dataclass(frozen=True)
class StackSummary:
    name: str
    resources: int


@dataclass(frozen=True)
class StageAudit:
    """One stage's audit verdict; ``problems`` says what failed and how to fix it."""

    stage: str
    passed: bool
    stacks: tuple[StackSummary, ...]
    unacknowledged: int
    acknowledged: int
    cfn_lint_errors: int
    explained_warnings: int
    problems: tuple[str, ...]
    report_dir: Path
    seconds: float

    @property
    def report_path(self) -> Path:
        return self.report_dir / "report.md"

    @property
    def resources(self) -> int:
        return sum(s.resources for s in self.stacks)


def _synthesize(stage: str, out: Path) -> tuple[Path, str, float]:
    started = time.monotonic()
    done = synthesize(stage, out / stage / "cdk.out")
    return out / stage / "cdk.out", done.stderr, time.monotonic() - started


def audit_stages(
    stages: Sequence[str],
    out: Path,
    *,
    parallel: int | None = None,
    on_stage: Callable[[StageAudit], None] | None = None,
) -> list[StageAudit]:
    """Synthesize ``stages`` (``parallel`` at a time, default: the usable cores) and audit each one."""
    for name in stages:
        load_stage(name)  # a bad stage file fails here, with the config error, before any synth
    # cfn-lint logs every template it scans at INFO; the verdict below is what matters.
    logging.getLogger("cfnlint").setLevel(logging.WARNING)
    versions = tool_versions()
    workers = max(1, min(len(stages), parallel or len(os.sched_getaffinity(0))))
    results: list[StageAudit] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        synths = [pool.submit(_synthesize, name, out) for name in stages]
        for name, future in zip(stages, synths, strict=True):
            assembly_dir, stderr, synth_seconds = future.result()
            started = time.monotonic()
            result = _audit_one(name, assembly_dir, stderr, versions)
            result = StageAudit(**{**vars(result), "seconds": synth_seconds + time.monotonic() - started})
            results.append(result)
            if on_stage:
                on_stage(result)
    return results


def _audit_one(stage: str, assembly_dir: Path, synth_stderr: str, versions: dict[str, str]) -> StageAudit:
    report_dir = assembly_dir.parent
    try:
        assembly = read_assembly(assembly_dir)
    except AssemblyError:
        tail = "\n".join(synth_stderr.strip().splitlines()[-20:])
        return StageAudit(
            stage=stage,
            passed=False,
            stacks=(),
            unacknowledged=0,
            acknowledged=0,
            cfn_lint_errors=0,
            explained_warnings=0,
            problems=(f"cdk synth failed for stage {stage!r}:\n{tail}",),
            report_dir=report_dir,
            seconds=0.0,
        )
    gate = evaluate(assembly)
    lint = lint_templates([s.template_path for s in assembly.stacks], regions=[load_stage(stage).region])
    report = build_report(stage=stage, assembly=assembly, gate=gate, lint=lint, versions=versions)
    (report_dir / "audit.json").write_text(
        json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (report_dir / "audit.sarif").write_text(
        json.dumps(render_sarif(report), indent=2) + "\n", encoding="utf-8"
    )
    (report_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    problems = [] if gate.ok else [gate.summary()]
    problems += [
        f"cfn-lint {f.rule_id} {f.template}: {f.message}" for f in (*lint.errors, *lint.unexplained_warnings)
    ]
    return StageAudit(
        stage=stage,
        passed=bool(report["passed"]),
        stacks=tuple(StackSummary(s["name"], s["resources"]) for s in report["stacks"]),
        unacknowledged=len(gate.violations),
        acknowledged=len(assembly.suppressed),
        cfn_lint_errors=len(lint.errors),
        explained_warnings=len(lint.kept_warnings),
        problems=tuple(problems),
        report_dir=report_dir,
        seconds=0.0,
    )
