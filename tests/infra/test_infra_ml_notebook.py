"""Controls N1-N6: the notebook instance, its role, its idle auto-stop and who may open it.

The auto-stop program runs for real: against a Jupyter stand-in on 127.0.0.1 and an ``aws``
executable that records its arguments, and the lifecycle script runs under bash in a sandbox.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from infra_testing import Synth, ref, resources

from infra.audit.rules import ROOKERY_RULES
from infra.audit.template import flatten
from infra.constructs.notebook import AUTOSTOP_SCRIPT, MAX_LIFECYCLE_SCRIPT, OPEN_ACTIONS, on_start_script
from infra.constructs.notebook_autostop import idle_minutes
from stage.names import notebook_instance_name, notebook_role_path

synthesized = pytest.mark.xdist_group("infra-synth")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- N1-N5 on the template


@synthesized
def test_the_notebook_is_private_rootless_encrypted_and_imdsv2_only(synth: Synth) -> None:
    ml, network = synth.stacks.ml, synth.stacks.network.network
    assert ml.notebook is not None
    props = synth.props(ml.notebook.instance)
    assert props["NotebookInstanceName"] == notebook_instance_name(synth.stage)
    assert props["DirectInternetAccess"] == "Disabled"
    assert props["RootAccess"] == "Disabled"
    assert props["InstanceMetadataServiceConfiguration"] == {"MinimumInstanceMetadataServiceVersion": "2"}
    assert props["KmsKeyId"] == ml.resolve(synth.stacks.data.keys.data.key_arn)
    assert props["SubnetId"] == ml.resolve(network.vpc.isolated_subnets[0].subnet_id)
    assert props["SecurityGroupIds"] == [
        ml.resolve(network.workload_security_groups["sagemaker"].security_group_id)
    ]
    settings = synth.stage.notebook
    assert props["PlatformIdentifier"] == settings.platform_identifier == "notebook-al2023-v1"
    assert (props["InstanceType"], props["VolumeSizeInGB"]) == (
        settings.instance_type,
        settings.volume_size_gb,
    )
    lifecycle = synth.logical_id(ml.notebook.lifecycle)
    assert props["LifecycleConfigName"] == {"Fn::GetAtt": [lifecycle, "NotebookInstanceLifecycleConfigName"]}
    assert [r.id for r in ROOKERY_RULES.rules if r.id in ("Rookery-N1", "Rookery-N5", "Rookery-N6")] == [
        "Rookery-N1",
        "Rookery-N5",
        "Rookery-N6",
    ]
    for rule in ROOKERY_RULES.rules:
        if rule.id in ("Rookery-N1", "Rookery-N5", "Rookery-N6"):
            assert list(rule.check(synth.ml)) == [], rule.id


def _on_start(synth: Synth) -> str:
    assert synth.stacks.ml.notebook is not None
    [hook] = synth.props(synth.stacks.ml.notebook.lifecycle)["OnStart"]
    assert len(hook["Content"]) <= MAX_LIFECYCLE_SCRIPT
    return base64.b64decode(hook["Content"]).decode("utf-8")


@synthesized
def test_the_lifecycle_script_starts_the_autostop_with_the_stages_idle_minutes(synth: Synth) -> None:
    script = _on_start(synth)
    assert script.startswith("#!/bin/bash\n")
    assert f"--idle-minutes {synth.stage.notebook.idle_minutes} " in script
    [payload] = re.findall(r"echo '([A-Za-z0-9+/=]+)' \| base64 --decode", script)
    assert base64.b64decode(payload).decode("utf-8") == AUTOSTOP_SCRIPT.read_text(encoding="utf-8")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@synthesized
def test_the_lifecycle_needs_no_internet(synth: Synth) -> None:
    script = _on_start(synth) + AUTOSTOP_SCRIPT.read_text(encoding="utf-8")
    for word in ("pip ", "pip3", "conda install", "curl", "wget", "github", "https://", "yum", "dnf "):
        assert word not in script.replace("https://localhost", ""), word


def test_the_autostop_program_is_python_39_and_standard_library_only() -> None:
    tree = ast.parse(AUTOSTOP_SCRIPT.read_text(encoding="utf-8"), feature_version=(3, 9))
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert modules <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_lifecycle_script_installs_and_starts_the_stopper(tmp_path: Path) -> None:
    """Run the OnStart script under bash with a recording 'python' in place of /usr/bin/python3."""
    record = tmp_path / "python-args"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/bash\necho "$@" > {record}\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    home = tmp_path / "rookery"
    env = {**os.environ, "ROOKERY_HOME": str(home), "ROOKERY_PYTHON": str(python)}
    subprocess.run(["bash", "-c", on_start_script(45)], env=env, check=True, timeout=30)
    installed = home / "autostop.py"
    assert installed.read_text(encoding="utf-8") == AUTOSTOP_SCRIPT.read_text(encoding="utf-8")
    for _ in range(100):  # started in the background
        if record.exists() and record.read_text():
            break
        threading.Event().wait(0.05)
    args = record.read_text().split()
    assert args[:3] == [str(installed), "--idle-minutes", "45"]
    assert args[3] == "--aws-cli" and args[4].endswith("aws")


# ---------------------------------------------------------------- the auto-stop program, for real


class _Jupyter(BaseHTTPRequestHandler):
    kernels: ClassVar[list[dict[str, Any]]] = []
    terminals: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        body = {"/api/kernels": self.kernels, "/api/terminals": self.terminals}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def jupyter() -> Iterator[tuple[str, type[_Jupyter]]]:
    handler = type("Jupyter", (_Jupyter,), {"kernels": [], "terminals": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def aws_cli(tmp_path: Path) -> tuple[Path, Path]:
    record = tmp_path / "aws-calls"
    cli = tmp_path / "aws"
    cli.write_text(f'#!/bin/bash\necho "$@" >> {record}\n')
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    return cli, record


@pytest.fixture
def metadata(tmp_path: Path) -> Path:
    path = tmp_path / "resource-metadata.json"
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/rookery-dev-notebook"
    path.write_text(json.dumps({"ResourceArn": arn, "ResourceName": "rookery-dev-notebook"}))
    return path


def _stamp(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run(url: str, cli: Path, metadata: Path, since: float = 180) -> subprocess.CompletedProcess[str]:
    """One look with a 30-minute limit, as if the instance had booted ``since`` minutes ago."""
    return subprocess.run(
        [sys.executable, "-I", str(AUTOSTOP_SCRIPT), "--once", "--idle-minutes", "30",
         "--since", _stamp(since), "--jupyter-url", url, "--aws-cli", str(cli), "--metadata", str(metadata)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_notebook_idle_longer_than_the_limit_is_stopped(
    jupyter: tuple[str, type[_Jupyter]], aws_cli: tuple[Path, Path], metadata: Path
) -> None:
    url, handler = jupyter
    handler.kernels = [{"id": "k1", "execution_state": "idle", "last_activity": _stamp(90)}]
    handler.terminals = [{"name": "1", "last_activity": _stamp(45)}]
    done = _run(url, aws_cli[0], metadata)
    assert done.returncode == 0, done.stderr
    assert aws_cli[1].read_text().split() == [
        "sagemaker", "stop-notebook-instance", "--notebook-instance-name", "rookery-dev-notebook",
        "--region", "eu-west-1",
    ]  # fmt: skip
    assert "stopping rookery-dev-notebook in eu-west-1" in done.stdout


# (kernel state and minutes since its last activity, minutes since a terminal's, minutes since boot):
# the timestamps are made when the test runs, not when it is collected.
Activity = tuple[list[tuple[str, float]], list[float], float]


@pytest.mark.parametrize(
    ("activity", "reason"),
    [
        (([("busy", 600)], [], 900), "a kernel is busy"),
        (([("idle", 5)], [], 180), "idle for 5 of 30 minutes"),
        (([("idle", 90)], [2], 180), "idle for 2 of 30 minutes"),
        # Nothing open, or nothing since the last restart: idle time counts from the boot.
        (([], [], 10), "idle for 10 of 30 minutes"),
        (([("idle", 90)], [], 12), "idle for 12 of 30 minutes"),
    ],
)
def test_activity_within_the_limit_or_a_busy_kernel_keeps_it_running(
    jupyter: tuple[str, type[_Jupyter]],
    aws_cli: tuple[Path, Path],
    metadata: Path,
    activity: Activity,
    reason: str,
) -> None:
    url, handler = jupyter
    kernels, terminals, since = activity
    handler.kernels = [{"execution_state": state, "last_activity": _stamp(ago)} for state, ago in kernels]
    handler.terminals = [{"last_activity": _stamp(ago)} for ago in terminals]
    done = _run(url, aws_cli[0], metadata, since)
    assert done.returncode == 0, done.stderr
    assert not aws_cli[1].exists()
    assert reason in done.stdout


def test_nothing_open_since_a_boot_longer_ago_than_the_limit_is_idle(
    jupyter: tuple[str, type[_Jupyter]], aws_cli: tuple[Path, Path], metadata: Path
) -> None:
    done = _run(jupyter[0], aws_cli[0], metadata, since=45)
    assert done.returncode == 0, done.stderr
    assert "stop-notebook-instance" in aws_cli[1].read_text()


def test_an_unreachable_jupyter_stops_nothing(aws_cli: tuple[Path, Path], metadata: Path) -> None:
    done = _run("http://127.0.0.1:9", aws_cli[0], metadata)
    assert done.returncode == 0
    assert "did not answer" in done.stdout and "will look again" in done.stdout
    assert not aws_cli[1].exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--idle-minutes", "0"], "--idle-minutes must be positive"),
        (["--idle-minutes", "30", "--jupyter-url", "https://example.com:8443"], "must point at this machine"),
    ],
)
def test_the_autostop_rejects_bad_arguments_with_the_fix(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-I", str(AUTOSTOP_SCRIPT), "--once", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and message in done.stderr


def test_idle_minutes_counts_from_the_latest_activity_and_never_before_start() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    started = now - timedelta(minutes=10)
    kernels = [{"execution_state": "idle", "last_activity": "2025-01-01T11:00:00.000000Z"}]
    assert idle_minutes(now, kernels, [], started) == 10
    assert idle_minutes(now, kernels, [], now - timedelta(hours=3)) == 60
    assert idle_minutes(now, [{"execution_state": "busy"}], [], started) is None


# ---------------------------------------------------------------- the notebook's role


@synthesized
def test_the_notebook_role_reads_the_lake_writes_its_workspace_and_stops_only_itself(synth: Synth) -> None:
    ml = synth.stacks.ml
    assert ml.notebook is not None
    role = synth.props(ml.notebook.role)
    assert role["Path"] == notebook_role_path(synth.stage)
    assert role["PermissionsBoundary"] == ref(synth.logical_id(ml.guardrails.policy))
    statements = [
        s
        for p in resources(synth.ml, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(ml.notebook.role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("iam:") or a.startswith("sagemaker:Create")}
    assert {a for a in actions if a.startswith("sagemaker:")} == {
        "sagemaker:StopNotebookInstance",
        "sagemaker:DescribeNotebookInstance",
    }
    by_sid = {s["Sid"]: s for s in statements if "Sid" in s}
    assert by_sid["StopItselfWhenIdle"]["Resource"] == ml.resolve(ml.notebook.arn)
    writes = [
        s for s in statements if any(a in ("s3:PutObject", "s3:DeleteObject") for a in _as_list(s["Action"]))
    ]
    assert [s["Sid"] for s in writes] == ["NotebookWorkspace"]
    assert flatten(writes[0]["Resource"]).endswith("/notebooks/*")


# ---------------------------------------------------------------- N6: who may open it


@synthesized
def test_opening_jupyter_is_allowed_on_this_notebook_only(synth: Synth) -> None:
    ml = synth.stacks.ml
    assert ml.notebook is not None
    policy = synth.props(ml.notebook.open_policy)
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(OPEN_ACTIONS)
    assert "sagemaker:CreatePresignedNotebookInstanceUrl" in statement["Action"]
    assert statement["Resource"] == ml.resolve(ml.notebook.arn)
    name = notebook_instance_name(synth.stage)
    assert flatten(ml.resolve(ml.notebook.arn)).endswith(f":notebook-instance/{name}")
    assert "Roles" not in policy  # the shipped stages name no roles: attach it deliberately
    presigned = [
        (logical_id, s)
        for logical_id, p in {
            **resources(synth.ml, "AWS::IAM::Policy"),
            **resources(synth.ml, "AWS::IAM::ManagedPolicy"),
        }.items()
        if logical_id != synth.logical_id(ml.guardrails.policy)
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if any("Presigned" in a for a in _as_list(s["Action"]))
    ]
    assert [logical_id for logical_id, _ in presigned] == [synth.logical_id(ml.notebook.open_policy)]


def test_the_open_policy_is_attached_to_the_roles_the_stage_names() -> None:
    """A stage with ``notebook.access_role_names``: the construct alone, in a small stack."""
    import aws_cdk as cdk  # noqa: PLC0415
    from aws_cdk import aws_ec2 as ec2  # noqa: PLC0415
    from aws_cdk import aws_iam as iam  # noqa: PLC0415
    from aws_cdk import aws_kms as kms  # noqa: PLC0415
    from aws_cdk import aws_s3 as s3  # noqa: PLC0415
    from aws_cdk.assertions import Template  # noqa: PLC0415

    from infra.constructs.notebook import ProjectNotebook  # noqa: PLC0415
    from infra.stacks.stage_props import notebook_props  # noqa: PLC0415
    from stage import load_stage  # noqa: PLC0415

    stage = load_stage("dev")
    stage = stage.model_copy(
        update={
            "notebook": stage.notebook.model_copy(update={"access_role_names": ("DataScientist", "MlLead")})
        }
    )
    stack = cdk.Stack(cdk.App(), "NotebookProbe")
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        subnet_configuration=[ec2.SubnetConfiguration(name="w", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
    )
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket.from_bucket_name(stack, "Bucket", "probe-bucket")
    notebook = ProjectNotebook(
        stack,
        "Notebook",
        props=notebook_props(stage, pipeline_name="rookery-dev-pipeline"),
        subnet=vpc.isolated_subnets[0],
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
        raw_bucket=bucket,
        curated_bucket=bucket,
        artifacts_bucket=bucket,
        data_key=key,
        artifacts_key=key,
        boundary=iam.ManagedPolicy(
            stack, "Boundary", statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])]
        ),
    )
    template = Template.from_stack(stack).to_json()
    resource = notebook.open_policy.node.default_child
    assert isinstance(resource, cdk.CfnElement)
    policy = template["Resources"][stack.get_logical_id(resource)]
    assert policy["Properties"]["Roles"] == ["DataScientist", "MlLead"]
