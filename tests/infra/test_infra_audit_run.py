"""``infra.audit.run``: the audit of a stage (synth, gate, cfn-lint, report files) without the CLI,
and ``rookery audit``'s exit code when synth leaves no assembly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_testing import CliAudit
from typer.testing import CliRunner

from infra.audit import run as audit_run
from infra.audit.run import (
    ASSEMBLY_DIR,
    SYNTH_LOG_LINES,
    AuditError,
    AuditResult,
    audit_assembly,
    audit_stages,
    run_audit,
    tool_versions,
)
from rookery.cli.main import app as cli
from stage import ConfigError, load_stage


@pytest.fixture(scope="module")
def dev_audit(dev_cli_audit: CliAudit, tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """``audit_assembly`` over a copy of the assembly ``rookery audit`` synthesized (one synth of dev
    serves both: the CLI's files are checked in test_infra_report)."""
    assert dev_cli_audit.done.returncode == 0, dev_cli_audit.done.stdout + dev_cli_audit.done.stderr
    report_dir = tmp_path_factory.mktemp("audit") / "dev"
    shutil.copytree(dev_cli_audit.out / ASSEMBLY_DIR, report_dir / ASSEMBLY_DIR)
    region = load_stage("dev").region
    return audit_assembly("dev", report_dir, region=region, versions=tool_versions(), synth_log="")


@pytest.mark.slow
@pytest.mark.xdist_group("infra-audit-cli")
def test_the_result_is_the_reviewers_report(dev_audit: AuditResult) -> None:
    report = json.loads((dev_audit.report_dir / "audit.json").read_text())

    assert dev_audit.report_dir.name == "dev" and dev_audit.synthesized
    assert dev_audit.passed == report["passed"]
    assert [(s.name, s.resources) for s in dev_audit.stacks] == [
        (s["name"], s["resources"]) for s in report["stacks"]
    ]
    assert {"Rookery-dev-Network", "Rookery-dev-Data"} <= {s.name for s in dev_audit.stacks}
    assert dev_audit.unacknowledged == len(report["findings"]["unacknowledged"])
    assert dev_audit.acknowledged == len(report["findings"]["acknowledged"]) > 0
    assert dev_audit.report_path.read_text().startswith("# rookery security audit: stage `dev`")
    assert (dev_audit.report_dir / "audit.sarif").is_file()
    assert (dev_audit.assembly_dir / "manifest.json").is_file()
    assert bool(dev_audit.problems) == (not dev_audit.passed)
    assert dev_audit.gate_passed == (not report["findings"]["unacknowledged"])


def test_an_unknown_stage_fails_before_any_synth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        audit_stages(["dev", "nope"], tmp_path)
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        run_audit("nope", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_stage_that_does_not_synthesize_fails_with_cdks_own_words(tmp_path: Path) -> None:
    result = audit_assembly(
        "dev",
        tmp_path / "dev",
        region="eu-west-1",
        versions={},
        synth_log="Error: something in app.py broke\n",
    )

    assert not result.synthesized and not result.passed and result.stacks == ()
    assert result.problems == ("cdk synth failed for stage 'dev':\nError: something in app.py broke",)


def test_only_the_end_of_a_long_synth_log_is_a_problem(tmp_path: Path) -> None:
    log = "\n".join(f"line {i}" for i in range(100))
    result = audit_assembly("dev", tmp_path, region="eu-west-1", versions={}, synth_log=log)

    (problem,) = result.problems
    assert problem.splitlines()[1:] == [f"line {i}" for i in range(100 - SYNTH_LOG_LINES, 100)]
    assert result.synth_log == log


def test_a_missing_cdk_cli_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_run, "CDK_CLI", tmp_path / "cdk")
    with pytest.raises(AuditError, match=r"cdk is missing; run `make setup`"):
        run_audit("dev", tmp_path / "out")


def test_rookery_audit_exits_2_with_cdks_words_when_synth_leaves_no_assembly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_synth(stage: str, outdir: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(["cdk", "synth"], 1, "", "Error: something in app.py broke\n")

    monkeypatch.setattr(audit_run, "synthesize", broken_synth)
    result = CliRunner().invoke(cli, ["audit", "--stage", "dev", "-o", str(tmp_path)])

    assert result.exit_code == 2, result.output
    assert result.stderr == "error: cdk synth failed for stage 'dev':\nError: something in app.py broke\n"
    assert result.stdout == "" and not (tmp_path / "report.md").exists()
