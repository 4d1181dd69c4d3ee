"""``rookery pipeline``: render and validate offline; upsert, start, status, wait on moto (in process
and as a server on 127.0.0.1, reached through --endpoint-url) and on stubs."""

from __future__ import annotations

import copy
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from pipeline_testing import REGION, RENDER_GROUP, steps_page
from typer.testing import CliRunner

from pipelines.aws import Connection
from pipelines.settings import BUILTIN_XGBOOST_LAYOUT
from rookery.cli import pipeline as cli

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)

ROLE = "arn:aws:iam::000000000000:role/rookery-dev-sagemaker-execution"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def _one_line_error(result: Any, code: int = 2) -> str:
    """The error contract: exit code, one line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("error: ")
    return str(lines[0])


@pytest.fixture
def definition_file(tmp_path: Path, train_definition: dict[str, Any]) -> Path:
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(train_definition), encoding="utf-8")
    return path


# -- offline --------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["--no-tune", "--tune"])
def test_render_then_validate(
    runner: CliRunner, tmp_path: Path, variant: str, request: pytest.FixtureRequest
) -> None:
    out = tmp_path / "pipeline.json"
    rendered = _run(runner, "render", "--stage", "dev", variant, "-o", str(out))
    assert rendered.exit_code == 0, rendered.output
    name = "tune" if variant == "--tune" else "train"
    assert f"wrote {out}: stage dev, {name} variant, spot on" in rendered.stderr
    # The CLI writes exactly what the builder renders, and renders the same twice.
    assert json.loads(out.read_text(encoding="utf-8")) == request.getfixturevalue(f"{name}_definition")
    checked = _run(runner, "validate", str(out))
    assert checked.exit_code == 0, checked.output
    assert "OK" in checked.stdout and "T1, T2, T3, T4, T5, T6, SHAPE, REF" in checked.stdout


def test_render_with_deployed_resources(runner: CliRunner, tmp_path: Path, dev_resources: Any) -> None:
    deployed = dev_resources.model_copy(
        update={"artifacts_bucket": "rookery-dev-artifacts-123456789012-eu-west-1"}
    )
    resources = tmp_path / "resources.json"
    resources.write_text(deployed.model_dump_json(), encoding="utf-8")
    printed = _run(runner, "render", "-s", "dev", "--no-tune", "--resources", str(resources), "-o", "-")
    assert printed.exit_code == 0, printed.output
    assert "s3://rookery-dev-artifacts-123456789012-eu-west-1" in printed.stdout
    out = tmp_path / "pipeline.json"
    out.write_text(printed.stdout, encoding="utf-8")
    assert _run(runner, "validate", str(out), "--resources", str(resources)).exit_code == 0
    # Checked against another stage's network, the same file fails T1.
    other = tmp_path / "other.json"
    other.write_text(
        deployed.model_copy(update={"subnet_ids": ("subnet-0f",)}).model_dump_json(), encoding="utf-8"
    )
    mismatch = _run(runner, "validate", str(out), "--resources", str(other), "--json")
    assert mismatch.exit_code == 1
    assert {f["control"] for f in json.loads(mismatch.stdout)} == {"T1"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"role_arn": "nope"}), encoding="utf-8")
    assert "--resources" in _one_line_error(
        _run(runner, "render", "-s", "dev", "--resources", str(bad), "-o", str(out))
    )


def test_validate_reports_findings_and_exits_1(
    runner: CliRunner, tmp_path: Path, tune_definition: dict[str, Any]
) -> None:
    broken = copy.deepcopy(tune_definition)
    job = broken["Steps"][[s["Name"] for s in broken["Steps"]].index("Tune")]["Arguments"][
        "TrainingJobDefinition"
    ]
    job.pop("EnableNetworkIsolation")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    result = _run(runner, "validate", str(path))
    assert result.exit_code == 1
    assert "1 finding(s)" in result.stdout and "T2" in result.stdout and "Tune" in result.stdout
    as_json = _run(runner, "validate", str(path), "--json")
    assert as_json.exit_code == 1
    (finding,) = json.loads(as_json.stdout)
    assert finding["step"] == "Tune" and finding["control"] == "T2"
    assert finding["field"] == "TrainingJobDefinition.EnableNetworkIsolation"
    assert finding["fix"].startswith("set TrainingJobDefinition.EnableNetworkIsolation to true")


def test_validate_shows_the_builtin_image_exception_and_what_it_leaves_to_the_project_image(
    runner: CliRunner, tmp_path: Path, builtin_tune_definition: dict[str, Any]
) -> None:
    path = tmp_path / "builtin.json"
    path.write_text(json.dumps(builtin_tune_definition), encoding="utf-8")
    shown = _run(runner, "validate", str(path))
    assert shown.exit_code == 0, shown.output  # acknowledged: reported, not blocking
    assert "acknowledged exceptions" in shown.stdout and "OK" in shown.stdout
    # The table folds long cells over lines: join the problem column's (the fourth) pieces.
    rows = [line.split("│") for line in shown.stdout.splitlines() if line.count("│") == 6]
    problem = " ".join(row[4].strip() for row in rows)
    assert "the built-in image only trains: Evaluate, Register and CreateModel" in problem
    as_json = _run(runner, "validate", str(path), "--json")
    (finding,) = json.loads(as_json.stdout)
    assert finding["step"] == "Tune" and finding["control"] == "T6" and finding["acknowledged"]
    assert finding["message"].endswith(BUILTIN_XGBOOST_LAYOUT)


def test_offline_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    assert "unknown stage 'nope'" in _one_line_error(
        _run(runner, "render", "--stage", "nope", "-o", "x.json")
    )
    assert "cannot read" in _one_line_error(_run(runner, "validate", str(tmp_path / "missing.json")))


# -- AWS through moto (the aws fixture) ---------------------------------------------------------
@pytest.mark.usefixtures("aws")
def test_upsert_creates_then_updates(runner: CliRunner, definition_file: Path) -> None:
    created = _run(runner, "upsert", str(definition_file), "--stage", "dev")
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("created arn:aws:sagemaker:eu-west-1:")
    assert created.stdout.strip().endswith(":pipeline/rookery-dev-pipeline")
    described = boto3.client("sagemaker").describe_pipeline(PipelineName="rookery-dev-pipeline")
    assert json.loads(described["PipelineDefinition"]) == json.loads(
        definition_file.read_text(encoding="utf-8")
    )
    assert described["RoleArn"] == ROLE
    updated = _run(runner, "upsert", str(definition_file), "--stage", "dev")
    assert updated.exit_code == 0 and updated.stdout.startswith("updated ")


@pytest.mark.usefixtures("aws")
def test_upsert_refuses_a_definition_with_findings(
    runner: CliRunner, tmp_path: Path, train_definition: dict[str, Any]
) -> None:
    broken = copy.deepcopy(train_definition)
    broken["Steps"][[s["Name"] for s in broken["Steps"]].index("Train")]["Arguments"][
        "EnableNetworkIsolation"
    ] = False
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    message = _one_line_error(_run(runner, "upsert", str(path), "--stage", "dev"), code=1)
    assert "1 finding(s); see `rookery pipeline validate" in message


@pytest.mark.usefixtures("aws")
def test_start_checks_parameters_then_status_and_wait_degrade(
    runner: CliRunner, definition_file: Path
) -> None:
    assert _run(runner, "upsert", str(definition_file), "--name", "demo").exit_code == 0
    bad = _run(runner, "start", "--name", "demo", "--param", "AucThreshold=high")
    assert "AucThreshold is a Float" in _one_line_error(bad)

    started = _run(runner, "start", "--name", "demo", "--param", "AucThreshold=0.9")
    assert started.exit_code == 0, started.output
    arn = started.stdout.removeprefix("started ").strip()
    client = boto3.client("sagemaker")
    parameters = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {"Name": "AucThreshold", "Value": "0.9"} in parameters

    status = _run(runner, "status", "--name", "demo")  # the latest execution
    assert status.exit_code == 0, status.output
    assert arn in status.stdout and "Succeeded" in status.stdout
    assert "does not implement ListPipelineExecutionSteps; showing the execution status only" in status.stdout

    waited = _run(runner, "wait", arn, "--poll", "0")
    assert waited.exit_code == 0, waited.output
    assert "following the execution status only" in waited.stdout and "execution Succeeded" in waited.stdout


@pytest.mark.usefixtures("aws")
def test_status_of_a_pipeline_without_executions(runner: CliRunner, definition_file: Path) -> None:
    assert _run(runner, "upsert", str(definition_file), "--name", "idle").exit_code == 0
    assert "has no executions" in _one_line_error(_run(runner, "status", "--name", "idle"))
    assert "could not find pipeline" in _one_line_error(_run(runner, "start", "--name", "absent")).lower()


# -- AWS through --endpoint-url: moto as an HTTP server on 127.0.0.1 -------------------------------------
@pytest.fixture
def no_endpoint_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Test credentials, and no environment variable or config file naming an endpoint or region:
    a command reaches an endpoint only through --endpoint-url, in the stage's region."""
    for name in (
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SAGEMAKER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    # botocore retries a 500 or a refused connection with backoff (seconds per call); once is enough here.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.fixture
def moto_server(no_endpoint_env: None) -> Iterator[str]:
    """The URL of moto's server (a real HTTP server) on a free port of 127.0.0.1; nothing is mocked
    in process."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are process-wide: start from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


def test_upsert_start_status_and_wait_use_the_endpoint_url(
    runner: CliRunner, definition_file: Path, moto_server: str
) -> None:
    endpoint = ("--stage", "dev", "--endpoint-url", moto_server)
    created = _run(runner, "upsert", str(definition_file), *endpoint)
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("created arn:aws:sagemaker:eu-west-1:")
    server = boto3.client("sagemaker", region_name=REGION, endpoint_url=moto_server)
    described = server.describe_pipeline(PipelineName="rookery-dev-pipeline")
    assert json.loads(described["PipelineDefinition"]) == json.loads(
        definition_file.read_text(encoding="utf-8")
    )

    started = _run(runner, "start", "--param", "AucThreshold=0.9", *endpoint)
    assert started.exit_code == 0, started.output
    arn = started.stdout.removeprefix("started ").strip()
    executions = server.list_pipeline_executions(PipelineName="rookery-dev-pipeline")
    assert [e["PipelineExecutionArn"] for e in executions["PipelineExecutionSummaries"]] == [arn]
    parameters = server.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {"Name": "AucThreshold", "Value": "0.9"} in parameters

    status = _run(runner, "status", *endpoint)  # the latest execution, found on the server
    assert status.exit_code == 0, status.output
    assert f"{arn}: Succeeded" in status.stdout
    # moto's server answers an operation it lacks with a bare HTTP 500: status degrades, as in process.
    assert "does not implement ListPipelineExecutionSteps; showing the execution status only" in status.stdout
    waited = _run(runner, "wait", arn, "--poll", "0", *endpoint)
    assert waited.exit_code == 0, waited.output
    assert "execution Succeeded" in waited.stdout


@pytest.mark.usefixtures("no_endpoint_env")
def test_an_unreachable_endpoint_url_is_named_in_one_line(runner: CliRunner) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for command in (("status",), ("start",)):
        message = _one_line_error(_run(runner, *command, "--stage", "dev", "--endpoint-url", closed))
        assert message == f"error: cannot reach {closed}/: check --endpoint-url and the network"


# -- the steps call, stubbed ------------------------------------------------------------------------------
@pytest.mark.usefixtures("aws")
def test_status_shows_each_step_from_a_stubbed_steps_call(
    runner: CliRunner, definition_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(runner, "upsert", str(definition_file), "--name", "demo").exit_code == 0
    moto = boto3.client("sagemaker")
    arn = moto.start_pipeline_execution(PipelineName="demo", ClientRequestToken="t" * 32)[
        "PipelineExecutionArn"
    ]
    described = moto.describe_pipeline_execution(PipelineExecutionArn=arn)  # moto's real answer
    described.pop("ResponseMetadata")

    client = boto3.client("sagemaker")
    stubber = Stubber(client)
    stubber.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": arn})
    stubber.add_response(
        "list_pipeline_execution_steps",
        steps_page(
            ("Preprocess", "Succeeded", ""), ("Train", "Succeeded", ""), ("Evaluate", "Executing", "")
        ),
        {"PipelineExecutionArn": arn},
    )
    monkeypatch.setattr(Connection, "sagemaker", lambda self: client)
    with stubber:
        result = _run(runner, "status", arn)
    assert result.exit_code == 0, result.output
    rows = [
        line
        for line in result.stdout.splitlines()
        if any(s in line for s in ("Preprocess", "Train", "Evaluate"))
    ]
    assert [row.split()[1] for row in rows] == ["Preprocess", "Train", "Evaluate"]
    assert "Executing" in rows[-1] and "does not implement" not in result.stdout
    stubber.assert_no_pending_responses()


def test_wait_prints_each_change_and_exits_1_on_failure(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/demo/execution/abc123"
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    timeline = [
        ("Executing", "", steps_page(("Preprocess", "Executing", ""))),
        ("Executing", "", steps_page(("Preprocess", "Executing", ""))),
        ("Executing", "", steps_page(("Preprocess", "Succeeded", ""), ("Train", "Executing", ""))),
        ("Failed", "Step failure: One or multiple steps failed.", steps_page(
            ("Preprocess", "Succeeded", ""), ("Train", "Failed", "AlgorithmError: validation-auc is nan"),
        )),
    ]  # fmt: skip
    for status, reason, steps in timeline:
        stubber.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionStatus": status, "FailureReason": reason},
            {"PipelineExecutionArn": arn},
        )
        stubber.add_response("list_pipeline_execution_steps", steps, {"PipelineExecutionArn": arn})
    monkeypatch.setattr(Connection, "sagemaker", lambda self: client)
    with stubber:
        result = _run(runner, "wait", arn, "--poll", "0")
    assert result.exit_code == 1
    events = [line.split(None, 1)[1] for line in result.stdout.splitlines()]
    assert events == [
        f"following {arn}",
        "Preprocess Executing",
        "execution Executing",
        "Preprocess Succeeded",
        "Train Executing",
        "Train Failed: AlgorithmError: validation-auc is nan",
        "execution Failed",
    ]
    assert _one_line_error(result, code=1) == (
        "error: execution Failed at step Train: Step failure: One or multiple steps failed."
    )
    stubber.assert_no_pending_responses()


def test_wait_exits_1_at_the_timeout_and_says_how_to_resume(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/demo/execution/abc123"
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    stubber.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"})
    stubber.add_response("list_pipeline_execution_steps", steps_page(("Preprocess", "Executing", "")))
    monkeypatch.setattr(Connection, "sagemaker", lambda self: client)
    with stubber:
        result = _run(runner, "wait", arn, "--timeout", "0")
    assert _one_line_error(result, code=1) == (
        f"error: still Executing after 0 s; `rookery pipeline wait {arn}` resumes"
    )
    stubber.assert_no_pending_responses()


# -- credentials --------------------------------------------------------------------------
def test_without_credentials_it_says_so_in_one_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    message = _one_line_error(_run(runner, "status", "--stage", "dev"))
    assert (
        message
        == "error: no AWS credentials found: pass --profile, set AWS_PROFILE, or sign in (aws sso login)"
    )
    message = _one_line_error(_run(runner, "start", "--stage", "dev", "--profile", "nobody"))
    assert "The config profile (nobody) could not be found" in message
    message = _one_line_error(_run(runner, "status", "--name", "demo"))
    assert message == "error: no AWS region: pass --region or --stage, or set AWS_REGION"
