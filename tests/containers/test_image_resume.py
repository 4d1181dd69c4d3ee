"""Exact spot resume with the stage's default hyperparameters: row and column sampling, early stopping.

A job interrupted by SIGTERM and restarted must end where an uninterrupted job ends: the same
stopping round, the same model bytes (so the same predictions) and the same decision threshold.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from image_helpers import Sandbox, check
from test_image_spot import round_numbers

from pipelines.contract import CHECKPOINT_FREQUENCY
from rookery_contracts.evaluation import THRESHOLD_PATH, value_at
from rookery_contracts.hyperparameters import TRAINING_DEFAULTS
from rookery_contracts.model_layout import METADATA_FILE, MODEL_FILE
from rookery_image import features

pytestmark = pytest.mark.slow

# What the pipeline renders for the stage's defaults: row subsampling and early stopping included.
HYPERPARAMETERS = {
    **TRAINING_DEFAULTS,
    "checkpoint_frequency": CHECKPOINT_FREQUENCY,
    "colsample_bytree": 0.7,  # column sampling too: its generator is the harder one to restore
}


def write_splits(folder: Path, rows: int = 12_000, columns: int = 12) -> dict[str, Path]:
    """Noisy train/validation/test CSVs (early stopping fires well before num_round) and a preprocessor."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, columns))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + 1.5 * rng.normal(size=rows) > 0).astype(float)
    names = [f"x{i}" for i in range(columns)]
    pre = features.fit(
        dataset="resume",
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
    cuts = {
        "train": slice(0, rows // 2),
        "validation": slice(rows // 2, rows * 3 // 4),
        "test": slice(rows * 3 // 4, rows),
    }
    channels = {}
    for name, part in cuts.items():
        channels[name] = folder / name
        channels[name].mkdir(parents=True)
        np.savetxt(
            channels[name] / f"{name}.csv", np.column_stack([y[part], x[part]]), fmt="%.6g", delimiter=","
        )
    channels["preprocessor"] = folder / "preprocessor"
    channels["preprocessor"].mkdir()
    (channels["preprocessor"] / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
    return channels


def threshold(job: Sandbox, channels: dict[str, Path], root: Path) -> float:
    evaluate = Sandbox(root)
    job.pack_model(evaluate.processing_input("model"))
    for name in ("test", "validation"):
        target = evaluate.processing_input(name)
        target.mkdir(parents=True)
        (target / f"{name}.csv").write_bytes((channels[name] / f"{name}.csv").read_bytes())
    check(evaluate.run("evaluate.py", "--operating-point", "min_sensitivity:0.85"))
    report = json.loads((evaluate.processing_output("evaluation") / "evaluation.json").read_text())
    return float(value_at(report, THRESHOLD_PATH))


def test_a_resumed_job_with_default_hyperparameters_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    channels = write_splits(tmp_path / "data")
    training = {k: channels[k] for k in ("train", "validation", "preprocessor")}
    whole = Sandbox(tmp_path / "whole")
    whole.training_job(HYPERPARAMETERS, training)
    whole_log = check(whole.run("train")).stdout
    whole_meta = json.loads((whole.base / "model" / METADATA_FILE).read_text())
    assert whole_meta["stopped_early"], "the data is noisy enough for early stopping to end the job"

    job = Sandbox(tmp_path / "resumed")
    job.training_job(HYPERPARAMETERS, training)
    first = job.start("train")
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        seen.append(line)
        if line.startswith("[2] "):
            first.send_signal(signal.SIGTERM)  # a spot interruption, well before early stopping
            break
    seen.append(first.stdout.read())
    assert first.wait(timeout=120) == 143, "".join(seen)
    interrupted_at = max(round_numbers("".join(seen))) + 1
    assert interrupted_at < whole_meta["rounds"]

    second = check(job.run("train"))
    assert f"at round {interrupted_at} of" in second.stdout
    meta = json.loads((job.base / "model" / METADATA_FILE).read_text())
    assert meta["resumed_from_round"] == interrupted_at
    for key in ("rounds", "best_iteration", "stopped_early", "metrics"):
        assert meta[key] == whole_meta[key], key
    stop_line = re.compile(r"^train: early stopping after round \d+.*$", re.MULTILINE)
    assert stop_line.findall(second.stdout) == stop_line.findall(whole_log)
    assert (job.base / "model" / MODEL_FILE).read_bytes() == (whole.base / "model" / MODEL_FILE).read_bytes()
    assert threshold(job, channels, tmp_path / "eval-resumed") == threshold(
        whole, channels, tmp_path / "eval-whole"
    )
