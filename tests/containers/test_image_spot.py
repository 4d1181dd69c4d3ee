"""Spot safety: SIGTERM mid-training, restart, and the job resumes from its checkpoint to the full rounds."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from image_helpers import Sandbox

from rookery_image import features

pytestmark = pytest.mark.slow

NUM_ROUND = 150
HYPERPARAMETERS = {
    "num_round": NUM_ROUND,
    "max_depth": 6,
    "eta": 0.05,
    "checkpoint_frequency": 5,
    "nthread": 1,
}


def write_splits(folder: Path, rows: int = 20_000, columns: int = 20) -> dict[str, Path]:
    """Train/validation CSVs and their preprocessor.json, large enough that training takes ~10 ms a round."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, columns))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=rows) > 0).astype(float)
    names = [f"x{i}" for i in range(columns)]
    pre = features.fit(
        dataset="spot",
        target="y",
        positive_class="1",
        negative_class="0",
        id_column=None,
        numeric_names=names,
        numeric_train=x,
        categorical_names=[],
        categorical_levels=[],
        standardize=False,
    )
    channels = {}
    cut = int(rows * 0.8)
    for name, part in (("train", slice(0, cut)), ("validation", slice(cut, rows))):
        channels[name] = folder / name
        channels[name].mkdir(parents=True)
        np.savetxt(
            channels[name] / f"{name}.csv", np.column_stack([y[part], x[part]]), fmt="%.6g", delimiter=","
        )
    channels["preprocessor"] = folder / "preprocessor"
    channels["preprocessor"].mkdir()
    (channels["preprocessor"] / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
    return channels


def round_numbers(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"^\[(\d+)\] ", log, flags=re.MULTILINE)]


def test_sigterm_checkpoints_and_the_restarted_job_resumes(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "ml")
    job.training_job(HYPERPARAMETERS, write_splits(tmp_path / "data"))

    first = job.start("train")
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.startswith("[12] "):
            first.send_signal(signal.SIGTERM)  # what SageMaker does on a spot interruption
            break
    rest = first.stdout.read()
    assert first.wait(timeout=60) == 143, "".join(seen) + rest
    first_log = "".join(seen) + rest
    interrupted_at = max(round_numbers(first_log)) + 1
    assert 12 < interrupted_at < NUM_ROUND, "the job stopped mid-run, after the round it was in"
    assert f"stopped by SIGTERM after round {interrupted_at} of {NUM_ROUND}" in first_log
    assert not (job.base / "model" / "xgboost-model.ubj").exists()
    assert not (job.base / "output" / "failure").exists(), "an interruption is not a failure"
    newest = max((job.base / "checkpoints").glob("rookery-checkpoint-*.json"))
    assert json.loads(newest.read_text())["rounds"] == interrupted_at

    second = job.run("train")
    assert second.returncode == 0, second.stderr
    assert (
        f"resuming from checkpoint {newest.with_suffix('.ubj').name} at round {interrupted_at}"
        in second.stdout
    )
    resumed = round_numbers(second.stdout)
    assert resumed == list(range(interrupted_at, NUM_ROUND)), "rounds continue; nothing is trained twice"
    metadata = json.loads((job.base / "model" / "metadata.json").read_text())
    assert metadata["resumed_from_round"] == interrupted_at and metadata["rounds"] == NUM_ROUND
    booster = xgb.Booster(model_file=str(job.base / "model" / "xgboost-model.ubj"))
    assert booster.num_boosted_rounds() == NUM_ROUND


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path: Path) -> None:
    """A checkpoint left by another job (other hyperparameters or data) must not seed this one."""
    job = Sandbox(tmp_path / "ml")
    channels = write_splits(tmp_path / "data", rows=2_000, columns=5)
    job.training_job({**HYPERPARAMETERS, "num_round": 10}, channels)
    assert job.run("train").returncode == 0
    job.training_job({**HYPERPARAMETERS, "num_round": 12, "eta": 0.3}, {}, declare=list(channels))
    again = job.run("train")
    assert again.returncode == 0, again.stderr
    assert "written for other hyperparameters or data" in again.stdout
    assert "starting at round 0 of 12" in again.stdout
    assert round_numbers(again.stdout)[0] == 0
