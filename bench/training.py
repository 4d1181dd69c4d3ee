"""Training benchmark: rows per second of the real `train` entrypoint, and what a spot interruption costs.

Three runs of the same job on the same synthetic data, side by side: uninterrupted; then interrupted
by SIGTERM halfway and restarted (it resumes from its checkpoint). The resume cost is the extra wall
time of the interrupted pair over the uninterrupted run. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emulators.core.images import ImageMap
from emulators.core.sandbox import LOCAL_IMAGE, Sandbox
from stage.paths import PROGRAM_DIR

IMAGES = ImageMap.project(LOCAL_IMAGE)
TRAIN = IMAGES.command(LOCAL_IMAGE, None, default="train")
ROWS = 100_000
COLUMNS = 20
NUM_ROUND = 100
HYPERPARAMETERS = {
    "num_round": NUM_ROUND,
    "max_depth": 6,
    "eta": 0.1,
    "tree_method": "hist",
    "checkpoint_frequency": 10,
}


def write_job(base: Path) -> None:
    """A SageMaker training sandbox: config files and the train/validation/preprocessor channels."""
    sys.path.insert(0, str(PROGRAM_DIR))
    from rookery_image import features  # noqa: PLC0415 (the image's package, found on its own path)

    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, COLUMNS))
    y = (x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + rng.normal(size=ROWS) > 0).astype(float)
    names = [f"x{i}" for i in range(COLUMNS)]
    pre = features.fit(
        dataset="bench", target="y", positive_class="1", negative_class="0", id_column=None,
        numeric_names=names, numeric_train=x, categorical_names=[], categorical_levels=[], standardize=False,
    )  # fmt: skip
    job = Sandbox(base)
    cut = int(ROWS * 0.8)
    for name, part in (("train", slice(0, cut)), ("validation", slice(cut, ROWS))):
        job.channel(name).mkdir(parents=True)
        np.savetxt(
            job.channel(name) / f"{name}.csv", np.column_stack([y[part], x[part]]), fmt="%.6g", delimiter=","
        )
    job.channel("preprocessor").mkdir()
    (job.channel("preprocessor") / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
    job.write_training_config(
        {k: str(v) for k, v in HYPERPARAMETERS.items()},
        {
            "train": {"ContentType": "text/csv"},
            "validation": {"ContentType": "text/csv"},
            "preprocessor": {"ContentType": "application/json"},
        },
        {"current_host": "algo-1", "hosts": ["algo-1"]},
    )


def fresh_copy(source: Path, target: Path) -> Path:
    """Same inputs, no model and no checkpoints."""
    shutil.copytree(source / "input", target / "input")
    return target


def env(base: Path) -> dict[str, str]:
    """The job's environment, as the local engine gives it."""
    return IMAGES.environment(LOCAL_IMAGE, base, {})


def run(base: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(TRAIN, env=env(base), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return time.perf_counter() - start, result.stdout


def interrupted(base: Path, at_round: int) -> tuple[float, int]:
    """Run until the job prints ``[at_round]``, send SIGTERM, wait; return (seconds, rounds done)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        TRAIN,
        env=env(base),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    done = 0
    for line in process.stdout:
        match = re.match(r"\[(\d+)\] ", line)
        if match:
            done = int(match.group(1)) + 1
            if done > at_round:
                process.send_signal(signal.SIGTERM)
                break
    for line in process.stdout:
        match = re.match(r"\[(\d+)\] ", line)
        done = int(match.group(1)) + 1 if match else done
    if process.wait() != 143:
        raise RuntimeError(f"expected the interrupted job to exit 143, got {process.returncode}")
    return time.perf_counter() - start, done


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rookery-bench-train-") as tmp:
        root = Path(tmp)
        (root / "source").mkdir()
        write_job(root / "source")
        full_dir = fresh_copy(root / "source", root / "full")
        full, _ = run(full_dir)
        metadata = json.loads((full_dir / "model" / "metadata.json").read_text())
        spot_dir = fresh_copy(root / "source", root / "spot")
        first, stopped_at = interrupted(spot_dir, NUM_ROUND // 2)
        second, log = run(spot_dir)
        resumed = json.loads((spot_dir / "model" / "metadata.json").read_text())

    train_rows = metadata["train_rows"]
    fit_seconds = metadata["training_seconds"]
    print(
        f"training benchmark: {train_rows} training rows x {COLUMNS} features, {NUM_ROUND} rounds, depth 6, "
        f"hist, {os.cpu_count()} cores, checkpoint every {HYPERPARAMETERS['checkpoint_frequency']} rounds"
    )
    print(f"  uninterrupted job: {full:.2f} s wall ({fit_seconds:.2f} s in train(): load, fit, save)")
    print(f"  training throughput: {train_rows * NUM_ROUND / fit_seconds:,.0f} row-rounds/s; "
          f"{train_rows / full:,.0f} rows/s end to end")  # fmt: skip
    extra = first + second - full
    print(
        f"  interrupted at round {stopped_at} (SIGTERM), restarted: {first:.2f} s + {second:.2f} s; "
        f"resumed from round {resumed['resumed_from_round']} to {resumed['rounds']} rounds"
    )
    twice = stopped_at - resumed["resumed_from_round"]
    print(
        f"  resume cost: {extra:+.2f} s over the uninterrupted job ({extra / full:+.0%}); "
        f"rounds trained twice: {twice}"
    )
    if "resuming from checkpoint" not in log:
        raise RuntimeError("the restarted job did not resume from its checkpoint")


if __name__ == "__main__":
    main()
