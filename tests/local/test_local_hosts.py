"""`rookery local run --param TrainingInstanceCount=3 [--param ProcessingInstanceCount=2]`: the Train
step (and the Profile, Fit and Preprocess steps) run as host processes, each with its own /opt/ml
sandbox, resourceconfig.json and share of the sharded input, and one model artifact comes out; the
execution goes on to register and transform as with one host, with the same splits and preprocessor."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_testing import engine_for, lines, new_home, put_jsonl
from typer.testing import CliRunner

from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, ImageMap, LocalEngine, LocalHome
from rookery.cli.main import app
from rookery.demo.dataset import penguin_records
from stage import Stage

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


# --- preprocessing on several instances ---------------------------------------------------------

RAW = "s3://rookery-dev-raw/penguins/ingest_date=2024-05-01"
RAW_OBJECTS = 5
# One local run per processing count, on the same data; test AUC may differ by at most this.
AUC_MARGIN = 0.005


@dataclass(frozen=True)
class HostsRun:
    home: LocalHome
    execution: Execution
    output: str

    def prefix(self, step: str, name: str) -> Path:
        outputs = self.execution.step(step).properties["ProcessingOutputConfig"]["Outputs"]
        uri = next(o for o in outputs if o["OutputName"] == name)["S3Output"]["S3Uri"]
        return LocalS3(self.home).path(uri)

    def rows(self, split: str) -> list[str]:
        """Every row of a split, over every host's files, sorted (membership, not order)."""
        return sorted(
            line for path in sorted(self.prefix("Preprocess", split).glob("*.csv")) for line in lines(path)
        )

    @property
    def test_auc(self) -> float:
        evaluation = json.loads((self.prefix("Evaluate", "evaluation") / "evaluation.json").read_text())
        return float(evaluation["binary_classification_metrics"]["auc"]["value"])


@pytest.fixture(scope="module")
def processing_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, HostsRun]:
    """`rookery local run --param TrainingInstanceCount=3 --param ProcessingInstanceCount=N`, N = 1, 2,
    on penguins landed as five raw objects."""
    runs = {}
    records = penguin_records()
    for count in (1, 2):
        home = new_home(tmp_path_factory.mktemp(f"processing-{count}"))
        for k in range(RAW_OBJECTS):
            put_jsonl(home, f"{RAW}/penguins-{k}", records[k::RAW_OBJECTS])
        result = CliRunner().invoke(
            app,
            [
                "local", "run", "--stage", "dev", "--home", str(home.root),
                "--param", "TrainingInstanceCount=3", "--param", f"ProcessingInstanceCount={count}",
            ],
        )  # fmt: skip
        [execution] = LocalEngine(home, ImageMap()).executions()
        assert result.exit_code == 0 and execution.status == "Succeeded", result.output
        runs[count] = HostsRun(home, execution, result.output)
    return runs


def test_two_processing_hosts_run_the_three_preprocessing_jobs_end_to_end(
    processing_runs: dict[int, HostsRun],
) -> None:
    run = processing_runs[2]
    jobs = run.execution.path / "jobs"
    for step in ("Profile", "Fit", "Preprocess"):
        record = run.execution.step(step)
        assert record.metrics["hosts"] == ["algo-1", "algo-2"]
        assert [Path(p).name for p in record.metrics["host_logs"]] == [f"{step}.log", f"{step}.algo-2.log"]
        # ShardedByS3Key: in key order, host 1 gets objects 1, 3, 5 and host 2 objects 2, 4.
        shares = {
            folder: sorted(
                p.name for p in (jobs / folder / "processing" / "input" / "raw").rglob("*") if p.is_file()
            )
            for folder in (step, f"{step}.algo-2")
        }
        assert shares == {
            step: ["penguins-0", "penguins-2", "penguins-4"],
            f"{step}.algo-2": ["penguins-1", "penguins-3"],
        }
        config = json.loads((jobs / f"{step}.algo-2" / "config" / "resourceconfig.json").read_text())
        assert config == {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}
    # Every host's files under one prefix, named per host; the first host writes the artefacts.
    assert sorted(p.name for p in run.prefix("Fit", "fit").iterdir()) == [
        "algo-1.stats.json", "algo-2.stats.json", "plan.json",
    ]  # fmt: skip
    assert sorted(p.name for p in run.prefix("Preprocess", "test").iterdir()) == [
        "test-algo-1.csv", "test-algo-2.csv",
    ]  # fmt: skip
    assert [p.name for p in run.prefix("Preprocess", "preprocessor").iterdir()] == ["preprocessor.json"]
    # Each training host gets one file of each processing host.
    for k, folder in enumerate(("Train", "Train.algo-2", "Train.algo-3"), start=1):
        got = sorted(p.name for p in (jobs / folder / "input" / "data" / "train").iterdir())
        assert got == [f"train-algo-{h}-{k:04d}-of-0003.csv" for h in (1, 2)]
    assert run.execution.step("BatchTransform").status == "Succeeded"
    described = CliRunner().invoke(
        app, ["local", "describe", run.execution.id, "--home", str(run.home.root)], env={"COLUMNS": "400"}
    )
    assert described.exit_code == 0, described.output
    table = re.sub(r"[│\s]", "", described.output)
    for step in ("Profile", "Fit", "Preprocess"):
        for host, log in zip(
            ("algo-1", "algo-2"), run.execution.step(step).metrics["host_logs"], strict=True
        ):
            row = rf"{step}\({host}\)(?:(?!{step}\().)*?{re.escape(str(log).replace(' ', ''))}"
            assert re.search(row, table), described.output


def test_one_and_two_processing_hosts_give_the_same_splits_preprocessor_and_model_quality(
    processing_runs: dict[int, HostsRun],
) -> None:
    one, two = processing_runs[1], processing_runs[2]
    for split in ("train", "validation", "test"):
        assert two.rows(split) == one.rows(split), split
    pre_one, pre_two = (
        json.loads((r.prefix("Preprocess", "preprocessor") / "preprocessor.json").read_text())
        for r in (one, two)
    )
    # Exact: levels, feature columns, medians (fewer training values than the sketch holds exactly).
    assert pre_two["categorical"] == pre_one["categorical"]
    assert pre_two["feature_names"] == pre_one["feature_names"]
    for a, b in zip(pre_two["numeric"], pre_one["numeric"], strict=True):
        assert a["median"] == b["median"]
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-9) and a["std"] == pytest.approx(
            b["std"], rel=1e-9
        )
    report_one, report_two = (
        json.loads((r.prefix("Preprocess", "report") / "data_report.json").read_text()) for r in (one, two)
    )
    for key in ("rows", "class_balance", "missing_values", "imputation", "invalid_values"):
        assert report_two[key] == report_one[key], key
    assert (report_one["split"]["instances"], report_two["split"]["instances"]) == (1, 2)
    assert abs(two.test_auc - one.test_auc) <= AUC_MARGIN


def test_a_failing_processing_host_fails_the_step_with_its_reason(
    dev_stage: Stage, dev_train_definition: dict[str, Any], tmp_path: Path
) -> None:
    home = new_home(tmp_path / "home")
    put_jsonl(home, f"{RAW}/penguins-0", penguin_records())
    corrupt = LocalS3(home).path(f"{RAW}/penguins-1.gz")  # the second object: algo-2's share
    corrupt.write_bytes(gzip.compress(b'{"species": "Adelie"}\n' * 50)[:40])
    execution = engine_for(dev_stage, home).run(
        dev_train_definition, parameters={"ProcessingInstanceCount": 2}
    )
    assert execution.failed_step == "Profile"
    profile = execution.step("Profile")
    assert execution.failure_reason == profile.failure_reason
    assert profile.failure_reason is not None
    assert profile.failure_reason.startswith(
        "UserError: raw file ingest_date=2024-05-01/penguins-1.gz is not a valid gzip file"
    )
    assert profile.failure_reason.endswith("(host algo-2)")
    assert profile.metrics["hosts"] == ["algo-1", "algo-2"]
    assert execution.step("Fit").status == "NotExecuted"
