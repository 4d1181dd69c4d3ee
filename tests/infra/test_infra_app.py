"""The composition root: context flags, configuration errors through the real CLI and ``main()``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from infra.app import destroy_flag, main, stage_environment
from infra.audit.run import CDK_CLI, synth_environment
from stage import REPO_ROOT, ConfigError, load_stage


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), (True, True), ("true", True), ("False", False)]
)
def test_destroy_flag_accepts_booleans_and_their_spelling(value: object, expected: bool) -> None:
    assert destroy_flag(value) is expected


def test_destroy_flag_rejects_anything_else_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"-c destroy_data='yes': use -c destroy_data=true or leave it out"):
        destroy_flag("yes")


def test_only_stages_with_an_account_are_pinned() -> None:
    assert stage_environment(load_stage("dev")) is None
    env = stage_environment(load_stage("prod"))
    assert env is not None and (env.account, env.region) == ("123456789012", "eu-west-1")


def _run_main(tmp_path: Path, context: dict[str, object]) -> int:
    return main(context=context, outdir=tmp_path)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "nope"}, "unknown stage 'nope'"),
        (
            {"stage": "prod", "destroy_data": "true"},
            "destroy-data flag was given but data.removal_policy is 'retain'",
        ),
        ({"stage": "dev", "destroy_data": "yes"}, "use -c destroy_data=true or leave it out"),
        ({}, "no stage selected: pass -c stage=NAME"),
    ],
)
def test_main_exits_2_with_the_message_and_no_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    context: dict[str, object],
    message: str,
) -> None:
    assert _run_main(tmp_path, context) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("rookery: ")
    assert "Traceback" not in err
    assert not (tmp_path / "manifest.json").exists()  # stopped before synthesis


@pytest.mark.xdist_group("infra-gate")
def test_main_synthesizes_a_stage_that_passes_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert _run_main(tmp_path, {**context, "stage": "dev"}) == 0
    assert (tmp_path / "Rookery-dev-Network.template.json").is_file()
    assert (tmp_path / "Rookery-dev-Data.template.json").is_file()
    assert (tmp_path / "Rookery-dev-ML.template.json").is_file()
    assert (tmp_path / "Rookery-dev-Serving.template.json").is_file()
    assert "audit gate" not in capsys.readouterr().err


@pytest.mark.xdist_group("infra-cdk-cli")
def test_the_real_cdk_cli_stops_on_an_unknown_stage_with_the_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CDK_CLI), "synth", "--quiet", "-c", "stage=nope", "-o", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        env=synth_environment(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode != 0
    assert "unknown stage 'nope'" in done.stderr
    assert "Known stages: dev, prod" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "exited with error 2" in done.stderr  # app.py's exit code for a configuration error
