"""`rookery local run --param TrainingInstanceCount=3`: the Train step runs as three host processes,
each with its own /opt/ml sandbox, resourceconfig.json and share of the train channel, and one
model artifact comes out; the execution goes on to register and transform as with one host."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from local_testing import new_home
from typer.testing import CliRunner

from emulators.sagemaker import ImageMap, LocalEngine
from rookery.cli.main import app
from rookery.demo.dataset import penguin_records

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-hosts")]


def test_three_training_hosts_run_end_to_end(tmp_path: Path) -> None:
    home = new_home(tmp_path / "home")
    data = tmp_path / "penguins.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in penguin_records()), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "local",
            "run",
            "--stage",
            "dev",
            "--data",
            str(data),
            "--home",
            str(home.root),
            "--param",
            "TrainingInstanceCount=3",
        ],
    )
    [execution] = LocalEngine(home, ImageMap()).executions()
    assert result.exit_code == 0 and execution.status == "Succeeded", result.output
    train = execution.step("Train")
    assert train.metrics["hosts"] == ["algo-1", "algo-2", "algo-3"]
    logs = [Path(p) for p in train.metrics["host_logs"]]
    assert [p.name for p in logs] == ["Train.log", "Train.algo-2.log", "Train.algo-3.log"]
    for host, log in zip(("algo-1", "algo-2", "algo-3"), logs, strict=True):
        assert f"train: host {host} joins 3 hosts ['algo-1', 'algo-2', 'algo-3']" in log.read_text()
    jobs = logs[0].parent.parent / "jobs"
    shares = {
        host: sorted(p.name for p in (jobs / folder / "input" / "data" / "train").iterdir())
        for host, folder in (("algo-1", "Train"), ("algo-2", "Train.algo-2"), ("algo-3", "Train.algo-3"))
    }
    assert shares == {f"algo-{k}": [f"train-{k:04d}-of-0003.csv"] for k in (1, 2, 3)}, "ShardedByS3Key"
    config = json.loads((jobs / "Train.algo-2" / "input" / "config" / "resourceconfig.json").read_text())
    assert config["current_host"] == "algo-2" and config["hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert not any((jobs / f / "model").exists() for f in ("Train.algo-2", "Train.algo-3")), "one model"
    assert execution.step("BatchTransform").status == "Succeeded"
    described = CliRunner().invoke(
        app, ["local", "describe", execution.id, "--home", str(home.root)], env={"COLUMNS": "400"}
    )
    assert described.exit_code == 0, described.output
    # The log column folds long paths over several lines: read the table without borders and spaces.
    table = re.sub(r"[│\s]", "", described.output)
    for host, log in zip(("algo-1", "algo-2", "algo-3"), logs, strict=True):
        row = rf"Train\({host}\)(?:(?!Train\().)*?{re.escape(str(log).replace(' ', ''))}"
        assert re.search(row, table), described.output
