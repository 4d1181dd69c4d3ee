"""``rookery demo``: exit codes and what the user reads (the phases are tested in test_demo_run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from demo_testing import CliDemo
from typer.testing import CliRunner

from emulators.s3 import LocalS3
from emulators.sagemaker import ImageMap, LocalEngine, LocalHome, LocalRegistry
from emulators.sagemaker.pipeline.expressions import to_text
from rookery.cli.main import app
from rookery.demo.dataset import bundled_csv
from rookery.demo.run import DemoOptions, prepare

pytestmark = pytest.mark.slow  # tests without a shared demo fixture spread over the workers

REPO = Path(__file__).resolve().parents[2]


def demo(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["demo", *args])
    return result.exit_code, result.stdout, result.stderr


def test_an_unknown_stage_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    code, _, err = demo("--stage", "nope", "--home", str(tmp_path))

    assert code == 2
    assert "unknown stage 'nope'" in err and "Known stages: dev, prod" in err
    assert not (tmp_path / "demo").exists()


def test_a_bad_param_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    code, _, err = demo("--no-audit", "--home", str(tmp_path), "--param", "AucThreshold=high")

    assert code == 2
    assert "--param AucThreshold=high" in err and "Float" in err
    assert not (tmp_path / "demo").exists() and not (tmp_path / "s3").exists()


@pytest.mark.xdist_group("demo-run")
def test_the_demo_without_its_audit_prints_progress_a_summary_and_the_report(demo_train_cli: CliDemo) -> None:
    code, out, err = demo_train_cli.code, demo_train_cli.out, demo_train_cli.err
    assert demo_train_cli.result is not None
    home = demo_train_cli.result.report_path.parents[1]

    assert code == 0, err
    assert "1/8  Ingest the bundled penguins through the Firehose transform" in out
    assert "Train            Succeeded" in out and "Fail             Skipped" in out
    assert "349 records in, 344 delivered to s3://rookery-dev-raw/penguins/ingest_date=" in out
    assert "gate passed" in out and "model rookery-dev-models/1 Approved" in out
    assert "swap to rookery-dev-models/2: failed requests: 0 / " in out
    assert "broken candidate: rolled back" in out
    assert "monitoring: test split: no violations" in out
    assert "monitoring: shifted copy: 2 features flagged" in out
    assert f"Report: {home / 'demo' / 'report.html'}" in out
    assert (home / "demo" / "report.html").is_file()


def test_a_failing_job_exits_1_with_its_own_reason_and_a_report(tmp_path: Path) -> None:
    corrupt = tmp_path / "s3" / "rookery-dev-raw" / "corrupt" / "part-0000"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("this is not JSON\n")

    code, out, err = demo(
        "--no-audit", "--home", str(tmp_path), "--param", "InputDataUri=s3://rookery-dev-raw/corrupt/"
    )

    assert code == 1
    assert "rookery demo failed at pipeline: the pipeline execution" in err
    # Profile is the first job to read the raw records: the job's own reason, from its failure file.
    assert "step Profile: UserError: " in err
    assert "Profile          Failed" in out
    assert (
        "not started: Baseline, BatchTransform, CreateModel, Evaluate, Fail, Fit, Gate, Preprocess, "
        "Register, Train"
    ) in out
    assert f"report: {tmp_path / 'demo' / 'report.html'}" in err
    assert "Demo FAILED" in (tmp_path / "demo" / "report.html").read_text()


@pytest.mark.xdist_group("demo-run")
def test_a_failing_gate_exits_1_with_the_fail_steps_message(demo_gate_failed_cli: CliDemo) -> None:
    code, out, err = demo_gate_failed_cli.code, demo_gate_failed_cli.out, demo_gate_failed_cli.err

    assert code == 1
    assert "rookery demo failed at pipeline: the pipeline execution " in err
    assert "step Fail: Model gate failed on the test split: auc = " in err
    assert "gate FAILED" in out and "Approved" not in out


def test_local_run_of_the_bundled_penguins_fails_an_auc_bar_above_the_dev_splits_auc(tmp_path: Path) -> None:
    # The dev stage's split (seed 6) gives a test AUC below 1 (0.976), so a 0.999 bar must fail the gate.
    data = tmp_path / "penguins.csv"
    data.write_text(bundled_csv(), encoding="utf-8")
    home = LocalHome(tmp_path / "home")
    home.root.mkdir()
    (home.root / "cache").symlink_to(REPO / ".rookery" / "cache", target_is_directory=True)  # shared renders
    (REPO / ".rookery" / "cache").mkdir(parents=True, exist_ok=True)
    args = ["--stage", "dev", "--data", str(data), "--param", "AucThreshold=0.999", "--home", str(home.root)]

    result = CliRunner().invoke(app, ["local", "run", *args])

    assert result.exit_code == 1, result.output
    [execution] = LocalEngine(home, ImageMap()).executions()
    assert execution.status == "Failed" and execution.failed_step == "Fail"
    assert execution.parameters["AucThreshold"] == 0.999
    evaluate = execution.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    evaluation = json.loads((LocalS3(home).path(evaluate["S3Uri"]) / "evaluation.json").read_text())
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert auc < 0.999
    message = f"Model gate failed on the test split: auc = {to_text(auc)} (bar: at least 0.999);"
    assert execution.failure_reason is not None and execution.failure_reason.startswith(message)
    assert execution.failure_reason.endswith("Nothing was registered.")
    # What the user reads: the failure panel names the Fail step and its message (panel borders and
    # line wrapping removed).
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    assert f"execution {execution.id} failed" in shown
    assert "step: Fail (Fail)" in shown and f"reason: {message}" in shown
    assert execution.step("Register").status == "Skipped" and "registered rookery-" not in result.stdout
    # The summary describes only what succeeded: a skipped Register has nothing to show.
    assert "None/None" not in shown and "(None)" not in shown
    assert LocalRegistry(home).packages() == [] and not home.models_dir.exists()


def test_the_demo_audits_the_stage_it_deploys_and_no_other_stage_file(
    tmp_path: Path, weak_stages: Path
) -> None:
    """Another stage's file (a user's, broken or slow to synthesize) neither blocks nor slows the demo."""
    assert prepare(DemoOptions(home=LocalHome(tmp_path))).audit_stages == ("dev",)
    assert prepare(DemoOptions(stage="prod", home=LocalHome(tmp_path), audit=None)).audit_stages == ("prod",)
    # A stage from outside infra/stages: `cdk synth` cannot see it, so it is not audited.
    weak = prepare(DemoOptions(stage="weak", stages_dir=weak_stages, home=LocalHome(tmp_path)))
    assert weak.audit_stages == ()
