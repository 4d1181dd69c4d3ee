"""``rookery demo``: exit codes and what the user reads (the phases are tested in test_demo_run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rookery.cli.main import app

pytestmark = pytest.mark.slow  # no shared fixture: these spread over the workers


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


def test_the_demo_without_its_audit_prints_progress_a_summary_and_the_report(tmp_path: Path) -> None:
    code, out, err = demo("--no-audit", "--home", str(tmp_path))

    assert code == 0, err
    assert "1/5  Ingest the bundled penguins through the Firehose transform" in out
    assert "Train            Succeeded" in out and "Fail             Skipped" in out
    assert "349 records in, 344 delivered to s3://rookery-dev-raw/penguins/ingest_date=" in out
    assert "gate passed" in out and "model rookery-dev-models/1 Approved" in out
    assert f"Report: {tmp_path / 'demo' / 'report.html'}" in out
    assert (tmp_path / "demo" / "report.html").is_file()


def test_a_failing_job_exits_1_with_its_own_reason_and_a_report(tmp_path: Path) -> None:
    corrupt = tmp_path / "s3" / "rookery-dev-raw" / "corrupt" / "part-0000"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text("this is not JSON\n")

    code, out, err = demo(
        "--no-audit", "--home", str(tmp_path), "--param", "InputDataUri=s3://rookery-dev-raw/corrupt/"
    )

    assert code == 1
    assert "rookery demo failed at pipeline: the pipeline execution" in err
    assert "step Preprocess: UserError: " in err  # the job's own reason, from its failure file
    assert "Preprocess       Failed" in out
    assert "not started: BatchTransform, CreateModel, Evaluate, Fail, Gate, Register, Train" in out
    assert f"report: {tmp_path / 'demo' / 'report.html'}" in err
    assert "Demo FAILED" in (tmp_path / "demo" / "report.html").read_text()


def test_a_failing_gate_exits_1_with_the_fail_steps_message(
    tmp_path: Path, weak_stages: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rookery.config.STAGES_DIR", weak_stages)  # where --stage names are looked up

    code, out, err = demo("--no-audit", "--stage", "weak", "--home", str(tmp_path))

    assert code == 1
    assert "rookery demo failed at pipeline: the pipeline execution " in err
    assert "step Fail: Model gate failed on the test split: auc = " in err
    assert "gate FAILED" in out and "Approved" not in out
