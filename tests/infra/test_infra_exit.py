"""A failed audit gate stops ``cdk synth`` (``infra.app.main``) and ``rookery audit`` with exit 1.

The shipped dev stage plus one bare bucket (no TLS-only policy, no access logs, no VPC-endpoint
deny) is synthesized once through ``main()``, exactly what ``app.py`` runs under ``cdk synth``;
``rookery audit`` then reads the assembly that run left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_s3 as s3
from typer.testing import CliRunner

import infra.app as app_module
from infra.app import StageStacks, main, repo_context
from infra.audit import run as audit_run
from rookery.cli.main import app as cli

pytestmark = pytest.mark.xdist_group("infra-gate")

PROBE = "Rookery-dev-Data/BareBucket"


@dataclass(frozen=True)
class FailedSynth:
    code: int
    stderr: str
    outdir: Path


@pytest.fixture(scope="module")
def failed_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailedSynth]:
    """``main()`` on dev with an extra bucket that breaks AwsSolutions, NIST and rookery's D1b."""
    real = app_module.build_stacks

    def with_a_bare_bucket(app: Any, stage: Any, **kwargs: Any) -> StageStacks:
        stacks = real(app, stage, **kwargs)
        s3.Bucket(stacks.data, "BareBucket", enforce_ssl=False)
        return stacks

    outdir = tmp_path_factory.mktemp("failed-synth")
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(stderr):
        patch.setattr(app_module, "build_stacks", with_a_bare_bucket)
        code = main(context={**repo_context(), "stage": "dev"}, outdir=outdir)
    yield FailedSynth(code=code, stderr=stderr.getvalue(), outdir=outdir)


def test_main_exits_1_and_names_each_unacknowledged_finding(failed_synth: FailedSynth) -> None:
    assert failed_synth.code == 1
    # jsii relays the kernel's own stderr (asset bundling notes) ahead of the gate's summary.
    assert "audit gate: FAILED (" in failed_synth.stderr
    err = failed_synth.stderr[failed_synth.stderr.index("audit gate: FAILED (") :]
    for rule in ("AwsSolutions-S10", "NIST.800.53.R5-S3BucketSSLRequestsOnly", "Rookery-D1b"):
        assert f"  - {rule} at {PROBE}/Resource" in err, rule
    assert "Fix the resource, or acknowledge the finding on its construct with a specific reason." in err
    # Only the probe fails: the shipped stacks themselves pass the gate.
    findings = [line for line in err.splitlines() if line.startswith("  - ")]
    assert findings and all(f" at {PROBE}/" in line for line in findings)
    # The assembly stays behind for the reviewer (and for rookery audit) to read.
    assert (failed_synth.outdir / "validation-report.json").is_file()


def test_rookery_audit_exits_1_reports_failed_and_lists_the_findings(
    failed_synth: FailedSynth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cdk_synth(stage: str, outdir: Path) -> subprocess.CompletedProcess[str]:
        # What the CDK CLI leaves when app.py exits 1: the assembly in -o and the app's stderr
        # (checked by hand with `cdk synth --app <this app> -o DIR`: exit 1, manifest and report kept).
        assert stage == "dev"
        shutil.copytree(failed_synth.outdir, outdir)
        return subprocess.CompletedProcess(["cdk", "synth"], failed_synth.code, "", failed_synth.stderr)

    monkeypatch.setattr(audit_run, "synthesize", cdk_synth)
    result = CliRunner().invoke(cli, ["audit", "--stage", "dev", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("rookery audit dev: FAILED (")
    assert result.stderr.startswith("audit gate: FAILED (")
    assert f"  - Rookery-D1b at {PROBE}/Resource" in result.stderr
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["passed"] is False
    unacknowledged = report["findings"]["unacknowledged"]
    assert unacknowledged and {f["construct_path"] for f in unacknowledged} == {f"{PROBE}/Resource"}
    assert (tmp_path / "report.md").read_text().startswith("# rookery security audit: stage `dev` (FAILED)")
