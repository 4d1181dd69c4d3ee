"""Failure behaviour: a failed gate, corrupt or empty input, and a spot interruption mid-training.

The gate and spot cases run on the synthetic dataset (xdist group ``local-synth``): its test AUC is
well below 0.999, and its training is slow enough per round to be interrupted mid-run.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from local_testing import (
    engine_for,
    model_metadata,
    put_jsonl,
    read_json,
    render,
    step_named,
    synthetic_stage,
)
from typer.testing import CliRunner

from emulators.firehose import land
from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, ImageMap, InterruptPlan, LocalEngine, LocalHome, LocalRegistry
from emulators.sagemaker.pipeline.expressions import to_text
from rookery.cli.main import app
from rookery.demo.dataset import penguin_records
from rookery.demo.synthetic import write_jsonl
from stage import Stage, load_stage

SYNTH_RAW = "s3://rookery-synth-raw/synthetic/ingest_date=2024-05-01/synthetic-1"
PENGUINS_RAW = "s3://rookery-dev-raw/penguins/ingest_date=2024-05-01"


def _statuses(execution: Execution) -> dict[str, str]:
    return {s.name: s.status for s in execution.steps}


@pytest.mark.slow
@pytest.mark.xdist_group("local-synth")
def test_a_failed_gate_ends_at_the_fail_step_with_its_message_and_registers_nothing(
    synth_stage: Stage, tmp_home: LocalHome
) -> None:
    definition = render(synth_stage, tune=False)
    write_jsonl(LocalS3(tmp_home).path(SYNTH_RAW), 3000, seed=3)
    execution = engine_for(synth_stage, tmp_home).run(definition, parameters={"AucThreshold": 0.999})

    assert execution.status == "Failed" and execution.failed_step == "Fail"
    assert _statuses(execution) == {
        "Profile": "Succeeded",
        "Fit": "Succeeded",
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "Gate": "Succeeded",
        "Fail": "Failed",
        "Baseline": "Skipped",
        "Register": "Skipped",
        "CreateModel": "Skipped",
        "BatchTransform": "Skipped",
    }
    assert execution.step("Gate").properties == {"Outcome": "False"}
    evaluation_dir = execution.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"][0][
        "S3Output"
    ]["S3Uri"]
    evaluation = read_json(tmp_home, f"{evaluation_dir}/evaluation.json")
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert auc < 0.999
    point = evaluation["operating_point"]
    expected = (
        f"Model gate failed on the test split: auc = {to_text(auc)} (bar: at least 0.999); operating point "
        f"{point['metric']} = {to_text(point['value'])} (bar: {to_text(point['bar'])}, "
        f"met = {to_text(point['met'])}). "
        "Nothing was registered."
    )
    assert execution.failure_reason == expected
    assert execution.step("Fail").failure_reason == expected
    assert LocalRegistry(tmp_home).packages() == []
    assert not tmp_home.models_dir.exists()
    saved = json.loads((execution.path / "execution.json").read_text())
    assert (
        saved["status"] == "Failed" and saved["failure_reason"] == expected and saved["failed_step"] == "Fail"
    )


@pytest.mark.slow
@pytest.mark.xdist_group("local-synth")
def test_a_spot_interruption_restarts_training_from_its_checkpoint(tmp_home: LocalHome) -> None:
    config = synthetic_stage(
        objective="binary:logistic", eval_metric="auc", num_round=150, max_depth=6, eta=0.05
    )
    full = render(config, tune=False)
    # The run needs only preprocessing and training: the same steps of the rendered definition.
    definition = {**full, "Steps": [step_named(full, n) for n in ("Profile", "Fit", "Preprocess", "Train")]}
    write_jsonl(LocalS3(tmp_home).path(SYNTH_RAW), 30_000, seed=5)
    plan = InterruptPlan(log_pattern=r"^\[15\] ")
    execution = engine_for(config, tmp_home).run(definition, interrupt_training=plan)

    assert execution.status == "Succeeded", execution.failure_reason
    train = execution.step("Train")
    assert train.metrics["interruptions"] == 1
    assert train.log_path is not None
    log = train.log_path.read_text()
    stopped = re.search(r"stopped by SIGTERM after round (\d+) of 150", log)
    assert stopped, log[-2000:]
    interrupted_at = int(stopped.group(1))
    assert 15 < interrupted_at < 150
    assert "spot interruption: the instance was reclaimed" in log
    assert re.search(r"restored \d+ checkpoint file\(s\) from s3://", log)
    assert re.search(
        rf"resuming from checkpoint rookery-checkpoint-\d+\.ubj at round {interrupted_at} of 150", log
    )
    metadata = model_metadata(tmp_home, train.properties["ModelArtifacts"]["S3ModelArtifacts"])
    assert metadata["resumed_from_round"] == interrupted_at and metadata["rounds"] == 150
    # The checkpoint written on SIGTERM reached CheckpointConfig.S3Uri: the restart resumed from it.
    checkpoints = LocalS3(tmp_home).path(train.properties["CheckpointConfig"]["S3Uri"])
    markers = [json.loads(p.read_text()) for p in checkpoints.glob("rookery-checkpoint-*.json")]
    assert interrupted_at in [m["rounds"] for m in markers]


def test_corrupt_input_fails_profile_with_the_jobs_own_reason(
    dev_stage: Stage, definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    raw = LocalS3(tmp_home).path(f"{PENGUINS_RAW}/penguins-1.gz")
    raw.parent.mkdir(parents=True)
    raw.write_bytes(gzip.compress(b'{"species": "Adelie"}\n' * 50)[:40])  # a truncated gzip object
    execution = engine_for(dev_stage, tmp_home).run(definition)

    assert execution.status == "Failed" and execution.failed_step == "Profile"
    profile = execution.step("Profile")
    assert profile.job_dir is not None
    message = (profile.job_dir / "output" / "message").read_text().strip()
    assert message.startswith(
        "UserError: raw file ingest_date=2024-05-01/penguins-1.gz is not a valid gzip file"
    )
    assert execution.failure_reason == profile.failure_reason == message
    assert profile.properties["ExitMessage"] == message
    assert profile.properties["ProcessingJobStatus"] == "Failed"
    later = {name: status for name, status in _statuses(execution).items() if name != "Profile"}
    assert set(later.values()) == {"NotExecuted"}, later
    assert not (execution.path / "jobs" / "Train").exists()


def test_empty_input_fails_fit_with_the_jobs_own_reason(
    dev_stage: Stage, definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    """Profile accepts a shard without records (one of several may hold none); Fit checks the whole."""
    put_jsonl(tmp_home, f"{PENGUINS_RAW}/penguins-1", [])
    execution = engine_for(dev_stage, tmp_home).run(definition)
    assert execution.failed_step == "Fit"
    assert execution.failure_reason is not None
    assert execution.failure_reason.startswith("UserError: the raw input ")
    assert "has 1 file(s) but no records; ingest data first" in execution.failure_reason


def test_a_processing_step_reads_its_own_job_name_from_the_execution_variable(
    dev_stage: Stage, definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    profile = step_named(definition, "Profile")
    profile["Arguments"]["Environment"]["JOB"] = {"Get": "Execution.ProcessingJobName"}
    profile["Arguments"]["AppSpecification"]["ContainerArguments"] = [
        "--split",
        "1,2,3",
    ]  # runs, fails at once
    definition["Steps"] = [profile]
    put_jsonl(tmp_home, f"{PENGUINS_RAW}/penguins-1", [])
    execution = engine_for(dev_stage, tmp_home).run(definition)
    properties = execution.step("Profile").properties
    assert properties["ProcessingJobStatus"] == "Failed"
    assert properties["Environment"]["JOB"] == properties["ProcessingJobName"]
    assert properties["ProcessingJobName"].startswith(f"pipelines-{execution.id}-Profile-")


def test_no_input_at_all_fails_profile_like_sagemaker(
    dev_stage: Stage, definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    execution = engine_for(dev_stage, tmp_home).run(definition)
    assert execution.failed_step == "Profile"
    assert execution.failure_reason is not None
    assert execution.failure_reason.startswith(
        "ClientError: No S3 objects found under S3 URL 's3://rookery-dev-raw/penguins/'"
    )


# -- the CLI: exit codes and the failing step surfaced -----------------------------------------------
def _cli(home: LocalHome, *args: str) -> Any:
    return CliRunner().invoke(app, ["local", *args, "--home", str(home.root)])


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text(
        "\n".join(["species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex", *rows])
        + "\n"
    )
    return path


def test_the_cli_surfaces_the_failing_step_and_exits_1(tmp_home: LocalHome, tmp_path: Path) -> None:
    data = _csv(
        tmp_path / "one-class.csv", [f"Adelie,Dream,{39 + i / 10},18.5,190,3700,male" for i in range(40)]
    )
    result = _cli(tmp_home, "run", "--stage", "dev", "--data", str(data))
    assert result.exit_code == 1, result.output
    # Fit checks the target over every shard's classes.
    assert "failed" in result.stdout and "step:   Fit (Processing)" in result.stdout
    assert "UserError: target 'sex' has 1 class(es)" in " ".join(result.stdout.split())
    [execution] = LocalEngine(tmp_home, ImageMap()).executions()
    assert execution.step("Train").status == "NotExecuted"


def test_the_cli_refuses_data_without_the_schemas_columns(tmp_home: LocalHome, tmp_path: Path) -> None:
    data = tmp_path / "partial.csv"
    data.write_text("species,sex\nAdelie,male\n")
    result = _cli(tmp_home, "run", "--stage", "dev", "--data", str(data))
    assert result.exit_code == 2
    assert "the CSV header lacks 5 column(s) of the 'penguins' schema: 'bill_length_mm'" in result.stderr
    assert len(result.stderr.splitlines()) == 2, "a few lines, not the column lists"
    assert not tmp_home.executions_dir.exists()


def test_a_run_without_data_names_what_it_reads_or_refuses_when_there_is_nothing(
    tmp_home: LocalHome, tmp_path: Path
) -> None:
    result = _cli(tmp_home, "run", "--stage", "dev")
    assert result.exit_code == 2
    assert "nothing to read under s3://rookery-dev-raw/penguins/: pass --data FILE" in result.stderr
    assert not tmp_home.executions_dir.exists()
    # Only the stage without an earlier run to follow: refused, naming the stages.
    result = _cli(tmp_home, "run")
    assert result.exit_code == 2 and "which stage? there is no local run to take it from" in result.stderr
    assert "(stages: dev, prod" in result.stderr


def test_the_local_raw_bucket_is_listed_and_removed_by_prefix(tmp_home: LocalHome, tmp_path: Path) -> None:
    data = _csv(tmp_path / "mine.csv", ["Adelie,Dream,39.1,18.5,190,3700,male"])
    stage = load_stage("dev")
    landed = land(
        tmp_home, data, schema=stage.dataset, layout=stage.data.layout, raw_bucket="rookery-dev-raw"
    )
    LocalS3(tmp_home).put_bytes(
        b'{"sex": "male"}\n', "s3://rookery-dev-raw/penguins/ingest_date=2026-01-01/x"
    )
    listed = _cli(tmp_home, "raw", "list", "--stage", "dev")
    assert listed.exit_code == 0, listed.output
    text = listed.stdout
    assert (
        "2 object(s)" in text and "uploads/penguins/" in text and "penguins/ingest_date=2026-01-01/x" in text
    )
    removed = _cli(tmp_home, "raw", "remove", "uploads/", "--stage", "dev")
    assert removed.exit_code == 0, removed.output
    assert f"removed {landed.object_uri}" in " ".join(removed.stdout.split())
    assert [o.uri for o in LocalS3(tmp_home).objects("s3://rookery-dev-raw/")] == [
        "s3://rookery-dev-raw/penguins/ingest_date=2026-01-01/x"
    ]
    assert not (tmp_home.s3_root / "rookery-dev-raw" / "uploads").exists(), "no empty folders left"
    nothing = _cli(tmp_home, "raw", "remove", "uploads/", "--stage", "dev")
    assert nothing.exit_code == 2 and "holds no objects" in nothing.stderr
    assert _cli(tmp_home, "raw", "remove", "", "--stage", "dev").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--stage", "nope"], "unknown stage 'nope'"),
        (["run", "--stage", "dev", "--param", "Nope=1"], "the pipeline has no parameter 'Nope'"),
        (["run", "--stage", "dev", "--param", "AucThreshold"], "write NAME=VALUE"),
        (["run", "--stage", "dev", "--param", "InputDataUri=s3://"], "'s3://' has no bucket name"),
        (["approve", "rookery-dev-models/7"], "no model package 'rookery-dev-models/7'"),
        (["approve", "not a ref"], "is not a model package reference"),
        (["invoke", "-"], "no local endpoint is running"),
        (["serve", "rookery-dev-models/1"], "no model package 'rookery-dev-models/1'"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(args: list[str], message: str, tmp_home: LocalHome) -> None:
    result = _cli(tmp_home, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not tmp_home.executions_dir.exists()


def test_a_value_read_from_an_earlier_step_is_checked_when_the_step_runs(
    dev_stage: Stage, definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    evaluate = step_named(definition, "Evaluate")
    evaluate["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = {
        "Get": "Steps.Preprocess.ProcessingJobArn"
    }
    definition["Steps"] = [*(step_named(definition, n) for n in ("Profile", "Fit", "Preprocess")), evaluate]
    put_jsonl(tmp_home, f"{PENGUINS_RAW}/penguins-1", penguin_records())
    execution = engine_for(dev_stage, tmp_home).run(definition)
    assert execution.failed_step == "Evaluate"
    assert execution.failure_reason is not None
    assert execution.failure_reason.startswith(
        "ValidationException: Arguments.ProcessingInputs[0].S3Input.S3Uri: 'arn:aws:sagemaker:"
    )
    assert "is not an s3:// URI" in execution.failure_reason
    assert not (execution.path / "jobs" / "Evaluate").exists(), "refused before the job started"
