"""End to end, train variant, through the CLI: `rookery local run --stage dev --data penguins.jsonl`.

One run per session (xdist group ``local-train``) on the Palmer penguins as a JSON-lines file (the
CSV form runs through the CLI in tests/demo/test_demo_cli.py, to a failing gate): the progress
lines name every step and its status, the gate passes, a model package is registered with the
metrics of evaluation.json, the batch transform writes one line per test row in order, and the
registered model answers boto3's sagemaker-runtime client on a local endpoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from local_testing import auc_in_order, lines, new_home, put_jsonl, read_json, rows_and_answers
from typer.testing import CliRunner

from emulators.s3 import LocalS3
from emulators.sagemaker import (
    EndpointError,
    Execution,
    ImageMap,
    LocalEndpoint,
    LocalEngine,
    LocalHome,
    LocalRegistry,
    ModelPackage,
    MonitoringError,
    MonitoringRun,
    run_monitoring,
)
from emulators.sagemaker.pipeline.expressions import to_text
from emulators.sagemaker.storage import stored
from emulators.sagemaker_runtime import find_endpoint
from emulators.sagemaker_runtime.capture import Captured, capture_record
from emulators.sagemaker_runtime.client import InvocationError, invoke_endpoint
from rookery.cli.main import app
from rookery.demo.dataset import penguin_records
from stage import load_stage
from stage.capture import capture_key
from stage.names import VARIANT_NAME

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-train")]

REPO = Path(__file__).resolve().parents[2]
ENDPOINT = "rookery-dev-test"


@dataclass
class CliRun:
    home: LocalHome
    exit_code: int
    stdout: str
    stderr: str
    execution: Execution


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    root = tmp_path_factory.mktemp("local-train")
    home = new_home(root / "home")
    data = root / "penguins.jsonl"  # JSON lines as Firehose delivers them: NA is null, numbers are numbers
    data.write_text("".join(json.dumps(r) + "\n" for r in penguin_records()), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["local", "run", "--stage", "dev", "--data", str(data), "--home", str(home.root)]
    )
    executions = LocalEngine(home, ImageMap()).executions()
    assert len(executions) == 1, result.output
    return CliRun(home, result.exit_code, result.stdout, result.stderr, executions[0])


def _evaluation(run: CliRun) -> dict[str, Any]:
    evaluate = run.execution.step("Evaluate")
    output = evaluate.properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return dict(read_json(run.home, f"{output}/evaluation.json"))


def test_the_cli_run_succeeds_with_every_step_in_order(cli_run: CliRun) -> None:
    assert cli_run.exit_code == 0, cli_run.stdout + cli_run.stderr
    execution = cli_run.execution
    assert execution.status == "Succeeded" and execution.failure_reason is None
    statuses = {s.name: s.status for s in execution.steps}
    assert statuses == {
        "Profile": "Succeeded",
        "Fit": "Succeeded",
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "Gate": "Succeeded",
        "Baseline": "Succeeded",
        "Register": "Succeeded",
        "CreateModel": "Succeeded",
        "BatchTransform": "Succeeded",
        "Fail": "Skipped",
    }
    order = [
        "Profile",
        "Fit",
        "Preprocess",
        "Train",
        "Evaluate",
        "Gate",
        "Baseline",
        "Register",
        "CreateModel",
        "BatchTransform",
    ]
    ends = [execution.step(n).ended_at for n in order]
    starts = [execution.step(n).started_at for n in order]
    assert all(e is not None and s is not None for e, s in zip(ends, starts, strict=True))
    for before, after in itertools.pairwise(order):
        assert execution.step(before).ended_at <= execution.step(after).started_at, (before, after)  # type: ignore[operator]
    assert re.fullmatch(r"[a-z0-9]{12}", execution.id)
    assert f"execution {execution.id}: Succeeded" in cli_run.stdout
    assert "registered rookery-dev-models/1" in cli_run.stdout


def test_the_summary_tells_the_result_and_the_next_steps_with_the_stage(cli_run: CliRun) -> None:
    evaluation = _evaluation(cli_run)
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    threshold = evaluation["decision_threshold"]["value"]
    point = evaluation["operating_point"]
    out = cli_run.stdout
    assert f"test AUC {auc:.4f} (bar 0.85)" in out
    assert f"threshold {threshold:.4f} (min_sensitivity:0.85): on test sensitivity " in out
    assert (
        f"recall {point['value']:.3f} vs bar 0.85, 90% upper bound {point['upper_bound']:.3f} -> met" in out
    )
    assert "gate: passed" in out and "registered rookery-dev-models/1 (PendingManualApproval)" in out
    assert "next: `rookery local approve rookery-dev-models/1`, then `rookery local serve --stage dev`" in out
    assert re.search(r"stored: [\d.]+ [KM]B \(job sandboxes [\d.]+ [KM]B, step outputs", out)


# One progress line per step change when stderr is not a terminal: "[  12.3 s] Train  Succeeded ...".
_PROGRESS = re.compile(r"^\[\s*\d+\.\d s\] (\S+)\s+(\S+)", re.MULTILINE)


def test_the_cli_prints_each_steps_name_and_status_as_it_changes(cli_run: CliRun) -> None:
    assert "rookery local run: stage dev, train variant, home " in cli_run.stderr
    landed = (
        r"--data: 344 record\(s\) from \S+penguins\.jsonl landed at s3://rookery-dev-raw/uploads/penguins/"
        r"[\w-]+/ \([\d.]+ KB; a prefix of its own: this run reads only it\)"
    )
    assert re.search(landed, cli_run.stderr)
    changes: dict[str, list[str]] = {}
    for step, status in _PROGRESS.findall(cli_run.stderr):
        seen = changes.setdefault(step, [])
        if not seen or seen[-1] != status:  # a running job repeats Executing with its latest line
            seen.append(status)
    ran = ["Starting", "Executing", "Succeeded"]
    assert changes == {
        "Profile": ran,
        "Fit": ran,
        "Preprocess": ran,
        "Train": ran,
        "Evaluate": ran,
        "Gate": ran,
        "Baseline": ran,
        "Register": ran,
        "CreateModel": ran,
        "BatchTransform": ran,
        "Fail": ["Skipped"],
    }
    assert re.search(r"^\[\s*\d+\.\d s\] Fail\s+Skipped\s+on the else branch of Gate", cli_run.stderr, re.M)


def test_data_landed_under_a_prefix_of_its_own_that_the_run_reads(cli_run: CliRun) -> None:
    uri = cli_run.execution.parameters["InputDataUri"]
    assert re.fullmatch(r"s3://rookery-dev-raw/uploads/penguins/\d{4}(-\d{2}){5}-[0-9a-f]{8}/", uri)
    [stored] = LocalS3(cli_run.home).objects(uri)
    assert stored.uri == f"{uri}penguins.jsonl"
    assert LocalS3(cli_run.home).objects("s3://rookery-dev-raw/penguins/") == [], "not the dataset's prefix"
    records = [json.loads(line) for line in lines(LocalS3(cli_run.home).path(stored.uri))]
    assert len(records) == 344
    assert records[3]["bill_length_mm"] is None and records[0]["bill_length_mm"] == 39.1  # null stays null
    report = cli_run.execution.step("Preprocess").properties["ProcessingOutputConfig"]["Outputs"]
    data_report = read_json(cli_run.home, f"{report[5]['S3Output']['S3Uri']}/data_report.json")
    assert data_report["rows"]["read"] == 344


def test_execution_json_records_status_timing_logs_and_properties(cli_run: CliRun) -> None:
    raw = json.loads((cli_run.execution.path / "execution.json").read_text())
    assert raw["status"] == "Succeeded" and raw["parameters"]["AucThreshold"] == 0.85
    for step in raw["steps"]:
        if step["status"] == "Succeeded":
            assert step["seconds"] is not None and step["seconds"] >= 0
            assert Path(step["log_path"]).is_file(), step["name"]
    train = cli_run.execution.step("Train")
    props = train.properties
    assert props["TrainingJobStatus"] == "Completed"
    assert re.fullmatch(rf"pipelines-{cli_run.execution.id}-Train-[a-z0-9]{{10}}", props["TrainingJobName"])
    expected = f"{props['OutputDataConfig']['S3OutputPath']}/{props['TrainingJobName']}/output/model.tar.gz"
    assert props["ModelArtifacts"]["S3ModelArtifacts"] == expected
    assert LocalS3(cli_run.home).path(expected).is_file()
    assert (
        train.job_dir is not None and (train.job_dir / "input" / "config" / "hyperparameters.json").is_file()
    )
    hyperparameters = json.loads((train.job_dir / "input" / "config" / "hyperparameters.json").read_text())
    assert hyperparameters["num_round"] == "200" and all(isinstance(v, str) for v in hyperparameters.values())
    # Evaluate read the model through a Get of the Train step's property, resolved.
    evaluate = cli_run.execution.step("Evaluate").properties
    assert evaluate["ProcessingInputs"][0]["S3Input"]["S3Uri"] == expected


def test_final_metrics_are_the_last_values_in_the_training_log(cli_run: CliRun) -> None:
    train = cli_run.execution.step("Train")
    assert train.log_path is not None
    log = train.log_path.read_text()
    final = {m["MetricName"]: m["Value"] for m in train.properties["FinalMetricDataList"]}
    assert set(final) == {"train:auc", "validation:auc"}
    assert final["validation:auc"] == float(re.findall(r"validation-auc:([0-9.]+)", log)[-1])
    assert train.metrics["final_metrics"]["validation:auc"] == final["validation:auc"]


def test_the_gate_read_the_evaluation_and_passed(cli_run: CliRun) -> None:
    gate = cli_run.execution.step("Gate")
    evaluation = _evaluation(cli_run)
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    conditions = gate.metrics["conditions"]
    assert conditions[0] == {"type": "GreaterThanOrEqualTo", "left": auc, "right": 0.85, "result": True}
    assert conditions[1]["left"] == evaluation["operating_point"]["met"] == 1
    assert gate.properties == {"Outcome": "True"}


def test_a_model_package_is_registered_with_the_evaluation_metrics(cli_run: CliRun) -> None:
    packages = LocalRegistry(cli_run.home).packages()
    assert [p.ref for p in packages] == ["rookery-dev-models/1"]
    package = packages[0]
    evaluation = _evaluation(cli_run)
    assert package.metrics == evaluation
    assert package.execution_id == cli_run.execution.id
    assert package.arn == "arn:aws:sagemaker:eu-west-1:000000000000:model-package/rookery-dev-models/1"
    assert (
        package.inference_spec["model_data_url"]
        == cli_run.execution.step("Train").properties["ModelArtifacts"]["S3ModelArtifacts"]
    )
    threshold = evaluation["decision_threshold"]["value"]
    assert package.inference_spec["environment"] == {"ROOKERY_DECISION_THRESHOLD": to_text(threshold)}
    assert float(package.inference_spec["environment"]["ROOKERY_DECISION_THRESHOLD"]) == threshold
    register = cli_run.execution.step("Register").properties
    assert (
        register["ModelPackageArn"] == package.arn
        and register["ModelApprovalStatus"] == "PendingManualApproval"
    )


def test_the_registered_package_carries_the_monitoring_baseline(cli_run: CliRun) -> None:
    package = LocalRegistry(cli_run.home).packages()[0]
    assert package.drift_check_baselines == package.model_metrics
    s3 = LocalS3(cli_run.home)
    files = {
        (section, kind): json.loads(s3.path(entry["S3Uri"]).read_text())
        for section, entries in package.drift_check_baselines.items()
        for kind, entry in entries.items()
    }
    assert set(files) == {
        (section, kind)
        for section in ("ModelDataQuality", "ModelQuality")
        for kind in ("Statistics", "Constraints")
    }
    # Data quality: every feature of the schema, profiled on the training split.
    statistics = files["ModelDataQuality", "Statistics"]
    stage = load_stage("dev")
    schema = stage.dataset
    assert [f["name"] for f in statistics["features"]] == list(schema.features)
    assert statistics["dataset"]["item_count"] > 100
    assert [f["name"] for f in files["ModelDataQuality", "Constraints"]["features"]] == list(schema.features)
    # Model quality: the test split's evaluation and the constraints derived from it.
    assert files["ModelQuality", "Statistics"] == _evaluation(cli_run)
    auc = _evaluation(cli_run)["binary_classification_metrics"]["auc"]["value"]
    limit = files["ModelQuality", "Constraints"]["binary_classification_constraints"]["auc"]
    drop = stage.monitoring.quality.max_drop
    assert limit == {
        "threshold": pytest.approx(max(0.0, auc - drop), abs=1e-6),
        "comparison_operator": "LessThanThreshold",
    }


def _transform_output(run: CliRun) -> list[str]:
    transform = run.execution.step("BatchTransform").properties
    return lines(LocalS3(run.home).path(f"{transform['TransformOutput']['S3OutputPath']}/test.jsonl.out"))


def _test_records(run: CliRun) -> list[str]:
    outputs = run.execution.step("Preprocess").properties["ProcessingOutputConfig"]["Outputs"]
    inference = next(o for o in outputs if o["OutputName"] == "inference")["S3Output"]["S3Uri"]
    return lines(LocalS3(run.home).path(f"{inference}/test.jsonl"))


def test_the_transform_writes_one_line_per_test_row_in_order(cli_run: CliRun) -> None:
    rows, answers = rows_and_answers(cli_run.home, cli_run.execution)
    assert len(answers) == len(_test_records(cli_run)) == len(rows) == 50
    assert all(a["label"] in ("female", "male") and 0 <= a["probability"] <= 1 for a in answers)
    # Labels follow the registered threshold.
    evaluation = _evaluation(cli_run)
    threshold = evaluation["decision_threshold"]["value"]
    assert all((a["label"] == "female") == (a["probability"] >= threshold) for a in answers)
    # In the test rows' order: paired line by line, the answers score exactly the AUC Evaluate
    # measured on the same rows with the same model; another order would not.
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]
    assert auc_in_order(rows, answers) == pytest.approx(auc, abs=1e-9)
    assert auc_in_order(rows, answers[1:] + answers[:1]) != pytest.approx(auc, abs=1e-9), "the check can tell"


def test_describe_executions_and_packages_commands(cli_run: CliRun) -> None:
    runner = CliRunner()
    home = ["--home", str(cli_run.home.root)]
    listed = runner.invoke(app, ["local", "executions", *home])
    assert listed.exit_code == 0 and cli_run.execution.id in listed.stdout
    described = runner.invoke(app, ["local", "describe", cli_run.execution.id, "--json", *home])
    assert described.exit_code == 0
    assert json.loads(described.stdout)["steps"][0]["name"] == "Profile"
    shown = runner.invoke(app, ["local", "describe", cli_run.execution.id, *home])
    assert shown.exit_code == 0 and "BatchTransform" in shown.stdout and "Preprocess.log" in shown.stdout
    missing = runner.invoke(app, ["local", "describe", "zzzzzzzzzzzz", *home])
    assert missing.exit_code == 2 and "no execution 'zzzzzzzzzzzz'" in missing.stderr
    packages = runner.invoke(app, ["local", "packages", *home])
    assert packages.exit_code == 0 and "rookery-dev-models/1" in packages.stdout


@pytest.fixture(scope="session")
def approved(cli_run: CliRun) -> ModelPackage:
    runner = CliRunner()
    home = ["--home", str(cli_run.home.root)]
    before = runner.invoke(app, ["local", "serve", "--port", "0", *home])
    assert before.exit_code == 2 and "has no Approved version" in before.stderr
    assert "rookery local approve rookery-dev-models/1" in before.stderr
    result = runner.invoke(app, ["local", "approve", "rookery-dev-models/1", *home])
    assert result.exit_code == 0, result.output
    return LocalRegistry(cli_run.home).latest_approved("rookery-dev-models")


@pytest.fixture(scope="session")
def endpoint(cli_run: CliRun, approved: ModelPackage) -> Iterator[LocalEndpoint]:
    images = ImageMap.project(str(approved.inference_spec["image"]))
    with LocalEndpoint.start(cli_run.home, images, approved, name=ENDPOINT) as running:
        yield running


def _runtime(url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_boto3_invoke_endpoint_returns_the_transforms_predictions(
    cli_run: CliRun, endpoint: LocalEndpoint
) -> None:
    runtime = _runtime(endpoint.url)
    records = _test_records(cli_run)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="application/jsonlines",
        Accept="application/jsonlines",
        Body="\n".join(records).encode(),
    )
    assert answer["ContentType"] == "application/jsonlines"
    assert answer["InvokedProductionVariant"] == VARIANT_NAME  # the stage's one production variant
    online = answer["Body"].read().decode().splitlines()
    # Same model, same threshold, same order: the endpoint agrees with batch transform line by line.
    assert [json.loads(x) for x in online] == [json.loads(x) for x in _transform_output(cli_run)]


def test_boto3_invoke_endpoint_with_one_json_record(endpoint: LocalEndpoint) -> None:
    record = {
        "bill_length_mm": 39.1,
        "bill_depth_mm": 18.7,
        "flipper_length_mm": 181,
        "body_mass_g": 3750,
        "species": "Adelie",
        "island": "Torgersen",
    }
    answer = _runtime(endpoint.url).invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="application/json", Body=json.dumps(record)
    )
    predictions = json.loads(answer["Body"].read())["predictions"]
    assert len(predictions) == 1 and predictions[0]["label"] in ("female", "male")


def test_a_bad_payload_raises_model_error_like_sagemaker(endpoint: LocalEndpoint) -> None:
    runtime = _runtime(endpoint.url)
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(
            EndpointName=ENDPOINT, ContentType="application/json", Body=b'{"species": "Adelie"}'
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert "lacks field(s)" in error["OriginalMessage"]
    assert error["Error"]["Message"].startswith("Received client error (400) from primary with message")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    with pytest.raises(runtime.exceptions.ModelError) as unsupported:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/plain", Body=b"x")
    assert unsupported.value.response["OriginalStatusCode"] == 415


def test_an_unknown_endpoint_name_is_a_validation_error(endpoint: LocalEndpoint) -> None:
    runtime = _runtime(endpoint.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="application/json", Body=b"{}")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint nope of account 000000000000 not found." in str(caught.value)


def test_invoke_endpoint_finds_the_running_endpoint_and_names_refusals(
    cli_run: CliRun, endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A profile this machine lacks does not matter: a local call needs no AWS account.
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    record = find_endpoint(cli_run.home)
    assert record == find_endpoint(cli_run.home, ENDPOINT) and record["Url"] == endpoint.url
    answer = invoke_endpoint(record, b"46.5,14.8,217,5200,Gentoo,Biscoe\n", content_type="text/csv")
    assert re.fullmatch(r"0\.\d+,(female|male)\n?", answer.decode())
    with pytest.raises(InvocationError, match=r"^ModelError: Received client error \(400\)"):
        invoke_endpoint(record, b'{"species": "Adelie"}', content_type="application/json")
    with pytest.raises(EndpointError, match="'nope' is not running; start it with `rookery local serve"):
        find_endpoint(cli_run.home, "nope")
    with pytest.raises(EndpointError, match="no local endpoint is running"):
        find_endpoint(LocalHome(tmp_path))


def test_the_cli_invokes_a_running_endpoint_through_boto3(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    body = tmp_path / "records.csv"
    body.write_text("39.1,18.7,181,3750,Adelie,Torgersen\n46.5,14.8,217,5200,Gentoo,Biscoe\n")
    home = ["--home", str(endpoint.folder.parent.parent)]
    result = CliRunner().invoke(app, ["local", "invoke", str(body), "--endpoint", ENDPOINT, *home])
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().splitlines()
    assert len(rows) == 2 and all(re.fullmatch(r"0\.\d+,(female|male)", row) for row in rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("not,enough\n")
    failed = CliRunner().invoke(app, ["local", "invoke", str(bad), "--endpoint", ENDPOINT, *home])
    assert failed.exit_code == 1 and "ModelError" in failed.stderr


def test_a_second_endpoint_with_the_same_name_is_refused(
    cli_run: CliRun, approved: ModelPackage, endpoint: LocalEndpoint
) -> None:
    from emulators.sagemaker import EndpointError  # noqa: PLC0415

    with pytest.raises(EndpointError, match="already served"):
        LocalEndpoint.start(
            cli_run.home, ImageMap.project(str(approved.inference_spec["image"])), approved, name=ENDPOINT
        )


def test_rookery_local_serve_runs_until_stopped(cli_run: CliRun, approved: ModelPackage) -> None:
    home = str(cli_run.home.root)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rookery"),
            "local",
            "serve",
            "--port",
            "0",
            "--name",
            "serve-cli",
            "--home",
            home,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        url = None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            match = re.search(r"URL: (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
            assert time.monotonic() < deadline
        assert url is not None, "serve printed no URL"
        answer = _runtime(url).invoke_endpoint(
            EndpointName="serve-cli", ContentType="text/csv", Body=b"46.5,14.8,217,5200,Gentoo,Biscoe\n"
        )
        assert answer["Body"].read().decode().count(",") == 1
        listed = CliRunner().invoke(
            app,
            ["local", "invoke", "-", "--home", home, "--content-type", "text/csv"],
            input="46.5,14.8,217,5200,Gentoo,Biscoe\n",
        )
        assert listed.exit_code == 0, listed.output
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=60)[0]
    assert process.returncode == 0, rest
    assert "endpoint serve-cli stopped" in rest
    assert not (cli_run.home.endpoints_dir / "serve-cli" / "endpoint.json").exists()


def _copy(cli_run: CliRun, tmp_path: Path) -> LocalHome:
    """The run's home, copied: what a test changes there leaves the session's run alone."""
    copy = LocalHome(tmp_path / "home")
    shutil.copytree(cli_run.home.root, copy.root, symlinks=True)
    return copy


def test_serving_a_version_that_is_not_approved_needs_the_flag(cli_run: CliRun, tmp_path: Path) -> None:
    copy = _copy(cli_run, tmp_path)
    # Whatever other tests approved in the session's home: here the version is as registered.
    LocalRegistry(copy).set_status("rookery-dev-models/1", "PendingManualApproval")
    home = ["--home", str(copy.root)]
    refused = CliRunner().invoke(app, ["local", "serve", "rookery-dev-models/1", "--port", "0", *home])
    assert refused.exit_code == 2, refused.output
    assert (
        "rookery-dev-models/1 is PendingManualApproval, not Approved: approve it first "
        "(`rookery local approve rookery-dev-models/1`), or pass --allow-unapproved" in refused.stderr
    )
    # Without --stage: the latest run's stage (dev), whose group has no approved version.
    latest = CliRunner().invoke(app, ["local", "serve", "--port", "0", *home])
    assert latest.exit_code == 2, latest.output
    assert "stage dev (the latest local run's" in latest.stderr and "has no Approved version" in latest.stderr


def test_clean_removes_old_executions_intermediate_data_and_keeps_the_registry(
    cli_run: CliRun, tmp_path: Path
) -> None:
    copy = _copy(cli_run, tmp_path)
    [execution] = LocalEngine(copy, ImageMap()).executions()
    before = stored(copy, execution)
    assert before.jobs > 0 and before.outputs > 0 and before.registered > 0 and before.models == 0
    kept = CliRunner().invoke(app, ["local", "clean", "--home", str(copy.root)])
    assert kept.exit_code == 0 and "nothing to remove" in kept.stdout, "--keep 1: the newest stays"
    result = CliRunner().invoke(app, ["local", "clean", "--keep", "0", "--home", str(copy.root)])
    assert result.exit_code == 0, result.output
    assert f"execution {execution.id}: removed" in result.stdout
    after = stored(copy, execution)
    assert (after.jobs, after.outputs, after.models) == (0, 0, 0)
    assert after.registered == before.registered, "the registered model's archive stays"
    [package] = LocalRegistry(copy).packages()
    assert LocalS3(copy).path(package.inference_spec["model_data_url"]).is_file()
    assert (execution.path / "execution.json").is_file() and (execution.path / "logs").is_dir()
    assert [e.id for e in LocalEngine(copy, ImageMap()).executions()] == [execution.id]


# -- rookery local monitor ------------------------------------------------------------------------

MONITORED = "rookery-dev-monitored"
SHIFTED = "rookery-dev-shifted"


CAPTURED_AT = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


def _capture(
    home: LocalHome,
    endpoint: str,
    records: list[dict[str, Any]],
    answers: list[dict[str, Any]],
    moment: dt.datetime = CAPTURED_AT,
) -> None:
    """One JSON request per record with its answer, in one file started at ``moment``, as the
    endpoint's data capture files them."""
    key = capture_key("capture/", endpoint, VARIANT_NAME, moment, "0001")
    path = LocalS3(home).path(f"s3://rookery-dev-raw/{key}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for k, (record, answer) in enumerate(zip(records, answers, strict=True)):
            item = Captured(
                request_type="application/json",
                request=json.dumps(record).encode(),
                response_type="application/json",
                response=json.dumps({"predictions": [answer]}).encode(),
                inference_time=moment,
                inference_id=f"{endpoint}-{k}",
            )
            out.write(json.dumps(capture_record(item, f"event-{k}")) + "\n")


def _monitor(run: CliRun, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["local", "monitor", "--stage", "dev", *args, "--home", str(run.home.root)]
    )


def test_local_monitor_passes_the_test_split_and_its_ground_truth(
    cli_run: CliRun, approved: ModelPackage
) -> None:
    rows, answers = rows_and_answers(cli_run.home, cli_run.execution)
    records = [json.loads(line) for line in _test_records(cli_run)]
    _capture(cli_run.home, MONITORED, records, answers)
    labels = ["female" if row.split(",", 1)[0] == "1" else "male" for row in rows]
    truth = [
        {
            "groundTruthData": {"data": label, "encoding": "CSV"},
            "eventMetadata": {"eventId": f"{MONITORED}-{k}"},
            "eventVersion": "0",
        }
        for k, label in enumerate(labels)
    ]
    put_jsonl(cli_run.home, "s3://rookery-dev-raw/ground-truth/2026/12/03/10/labels.jsonl", truth)
    result = _monitor(cli_run, "--endpoint", MONITORED)
    assert result.exit_code == 0, result.output
    for name in load_stage("dev").dataset.features:
        assert name in result.stdout
    assert "data-quality of rookery-dev-monitored: no violations (50 records)" in " ".join(
        result.stdout.split()
    )
    assert "model-quality of rookery-dev-monitored: no violations" in " ".join(result.stdout.split())
    reports = LocalS3(cli_run.home).list_prefix("s3://rookery-dev-artifacts/monitoring/model-quality/")
    quality = next(
        json.loads(p.read_text()) for name, p in reports if name.endswith("monitoring_report.json")
    )
    assert quality["labelled_records"] == 50
    auc = next(m for m in quality["metrics"] if m["metric"] == "auc")
    assert auc["current"] == pytest.approx(auc["baseline"], abs=1e-6)


def test_local_monitor_fails_on_a_shifted_feature_only(cli_run: CliRun, approved: ModelPackage) -> None:
    _, answers = rows_and_answers(cli_run.home, cli_run.execution)
    records = [json.loads(line) for line in _test_records(cli_run)]
    for record in records:
        if record["body_mass_g"] is not None:
            record["body_mass_g"] += 1500
    _capture(cli_run.home, SHIFTED, records, answers)
    result = _monitor(cli_run, "--endpoint", SHIFTED, "--kind", "data-quality")
    assert result.exit_code == 1, result.output
    reports = LocalS3(cli_run.home).list_prefix(
        f"s3://rookery-dev-artifacts/monitoring/data-quality/{SHIFTED}/"
    )
    violations = next(
        json.loads(p.read_text()) for name, p in reports if name.endswith("constraint_violations.json")
    )
    assert {(v["feature_name"], v["constraint_check_type"]) for v in violations["violations"]} == {
        ("body_mass_g", "baseline_drift_check")
    }
    assert "baseline_drift_check" in result.stdout


def test_a_monitoring_window_holds_the_files_started_in_it_only(
    cli_run: CliRun, approved: ModelPackage
) -> None:
    endpoint = "rookery-dev-windows"
    _, answers = rows_and_answers(cli_run.home, cli_run.execution)
    records = [json.loads(line) for line in _test_records(cli_run)]
    moved = [
        {**r, "body_mass_g": r["body_mass_g"] + 1500 if r["body_mass_g"] is not None else None}
        for r in records
    ]
    later = CAPTURED_AT + dt.timedelta(minutes=5)
    _capture(cli_run.home, endpoint, records, answers)
    _capture(cli_run.home, endpoint, moved, answers, moment=later)

    def window(start: dt.datetime | None, end: dt.datetime | None) -> MonitoringRun:
        return run_monitoring(
            cli_run.home,
            load_stage("dev"),
            approved,
            kind="data-quality",
            endpoint=endpoint,
            raw_bucket="rookery-dev-raw",
            artifacts_bucket="rookery-dev-artifacts",
            start=start,
            end=end,
        )

    clean = window(None, later - dt.timedelta(milliseconds=1))
    assert (clean.report["records"], clean.violations) == (50, [])
    assert clean.report["window"] == {"start": None, "end": "2026-12-03T10:04:59Z"}
    shifted = window(later, None)
    assert shifted.report["records"] == 50
    assert {v["feature_name"] for v in shifted.violations} == {"body_mass_g"}
    assert shifted.report["window"]["start"] == "2026-12-03T10:05:00Z"
    assert window(None, None).report["records"] == 100  # no window: everything captured
    with pytest.raises(MonitoringError, match=r"the window starts at 10:05:00\.000000, after its end"):
        window(later, CAPTURED_AT)


def test_local_monitor_of_an_endpoint_without_traffic_says_so(
    cli_run: CliRun, approved: ModelPackage
) -> None:
    result = _monitor(cli_run, "--endpoint", "rookery-dev-idle", "--kind", "data-quality")
    assert result.exit_code == 0, result.output
    assert "no traffic (0 records)" in " ".join(result.stdout.split())
