"""Training on several hosts, as SageMaker runs a job with an instance count above one: one model
close to the single-host one, resume after an interruption, and a failing host fails the job with
its reason without leaving the others waiting."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from hosts_helpers import Hosts
from image_helpers import Sandbox, check
from test_image_resume import HYPERPARAMETERS, write_splits

from rookery_contracts.model_layout import METADATA_FILE, MODEL_FILE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hosts")]

PARTS = 6  # training files: more than hosts, as preprocess writes them


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    found = write_splits(tmp_path_factory.mktemp("hosts-data"), rows=8000, columns=8)
    single = found["train"] / "train.csv"
    lines = single.read_text().splitlines(keepends=True)
    single.unlink()
    for k in range(PARTS):
        (found["train"] / f"part-{k:05d}.csv").write_text("".join(lines[k::PARTS]))
    return found


def training(channels: dict[str, Path]) -> dict[str, Path]:
    return {k: channels[k] for k in ("train", "validation", "preprocessor")}


def auc(model: Path, test: Path) -> float:
    table = np.loadtxt(test / "test.csv", delimiter=",", ndmin=2)
    booster = xgb.Booster(model_file=str(model / MODEL_FILE))
    scores = booster.predict(xgb.DMatrix(table[:, 1:], feature_names=booster.feature_names))
    labels = table[:, 0]
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
    positives = labels.sum()
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(labels) - positives))
    )


def test_three_hosts_train_one_model_as_good_as_one_host(tmp_path: Path, channels: dict[str, Path]) -> None:
    one = Sandbox(tmp_path / "one")
    one.training_job(HYPERPARAMETERS, training(channels))
    check(one.run("train"))
    hosts = Hosts(tmp_path / "three", 3)
    hosts.training_job(HYPERPARAMETERS, training(channels))
    results = hosts.run()
    assert all(code == 0 for code, _ in results), results
    assert sorted(p.name for p in hosts.model.iterdir()) == sorted(
        p.name for p in (one.base / "model").iterdir()
    )
    for job in hosts.sandboxes[1:]:
        assert not (job.base / "model").exists() or not any((job.base / "model").iterdir()), (
            "one model artifact"
        )
    meta = json.loads((hosts.model / METADATA_FILE).read_text())
    assert (
        meta["hosts"] == 3
        and meta["train_rows"] == json.loads((one.base / "model" / METADATA_FILE).read_text())["train_rows"]
    )
    # Validation metrics are global: every host logs the same ones, whatever its shard.
    finals = {next(line for line in log.splitlines() if line.startswith("[model]")) for _, log in results}
    assert len(finals) == 1, finals
    assert abs(auc(hosts.model, channels["test"]) - auc(one.base / "model", channels["test"])) < 0.005


def test_an_interrupted_multi_host_job_resumes_from_its_checkpoint(
    tmp_path: Path, channels: dict[str, Path]
) -> None:
    whole = Hosts(tmp_path / "whole", 3)
    whole.training_job(HYPERPARAMETERS, training(channels))
    assert all(code == 0 for code, _ in whole.run())

    hosts = Hosts(tmp_path / "spot", 3)
    hosts.training_job(HYPERPARAMETERS, training(channels))
    processes = hosts.start()
    first = processes[0]
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("[3] "):
            for process in processes:  # a spot interruption stops every instance of the job
                process.send_signal(signal.SIGTERM)
            break
    assert [p.wait(timeout=120) for p in processes] == [143, 143, 143]
    saved = sorted((hosts.sandboxes[0].base / "checkpoints").glob("*.json"))
    assert saved, "the first host saved a checkpoint"
    rounds = json.loads(saved[-1].read_text())["rounds"]
    assert not any((job.base / "checkpoints").exists() for job in hosts.sandboxes[1:]), (
        "only the first host saves"
    )

    restarted = hosts.run()
    assert all(code == 0 for code, _ in restarted), restarted
    assert (
        f"resuming from checkpoint rookery-checkpoint-{rounds:07d}.ubj at round {rounds}" in restarted[0][1]
    )
    assert json.loads((hosts.model / METADATA_FILE).read_text())["resumed_from_round"] == rounds
    assert (hosts.model / MODEL_FILE).read_bytes() == (whole.model / MODEL_FILE).read_bytes()


def test_a_host_with_bad_data_fails_every_host_with_its_reason(
    tmp_path: Path, channels: dict[str, Path]
) -> None:
    hosts = Hosts(tmp_path / "bad", 3, timeout=30)
    hosts.training_job(HYPERPARAMETERS, training(channels))
    (hosts.sandboxes[1].base / "input" / "data" / "train" / "part-00001.csv").write_text("1,abc\n")
    started = time.monotonic()
    results = hosts.run(limit=120)
    assert time.monotonic() - started < 60
    assert all(code == 1 for code, _ in results), results
    reasons = [job.failure for job in hosts.sandboxes]
    assert reasons[1].startswith("UserError: channel 'train' file part-00001.csv is not numeric CSV")
    for reason in (reasons[0], reasons[2]):
        assert reason.startswith(
            "UserError: host algo-2 failed: UserError: channel 'train' file part-00001.csv"
        )


def test_a_dead_host_fails_its_peers_without_a_hang(tmp_path: Path, channels: dict[str, Path]) -> None:
    hosts = Hosts(tmp_path / "dead", 3, timeout=20)
    hosts.training_job(HYPERPARAMETERS, training(channels))
    processes = hosts.start()
    third = processes[2]
    assert third.stdout is not None
    for line in third.stdout:
        if line.startswith("[2] "):
            third.kill()  # the instance is gone: no failure file, no goodbye
            break
    started = time.monotonic()
    codes = [p.wait(timeout=90) for p in processes[:2]]
    assert time.monotonic() - started < 60 and codes == [1, 1]
    for job in hosts.sandboxes[:2]:
        assert "lost contact with its peers" in job.failure and "its failure reason says why" in job.failure


def test_a_host_that_never_starts_fails_the_others_after_the_timeout(
    tmp_path: Path, channels: dict[str, Path]
) -> None:
    hosts = Hosts(tmp_path / "missing", 3, timeout=8)
    hosts.training_job(HYPERPARAMETERS, training(channels))
    started = time.monotonic()
    processes = hosts.start(only=[0, 1])
    codes = [p.wait(timeout=90) for p in processes]
    assert codes == [1, 1] and time.monotonic() - started < 60
    for job in hosts.sandboxes[:2]:
        assert job.failure.startswith(f"UserError: host {job.base.name} could not join the other hosts")
        assert "within 8 s" in job.failure
