"""The real preprocess job splits by a keyed hash: the same records in any order or file layout give
byte-identical outputs, and with a group column no entity is in two splits."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from image_helpers import Sandbox, check, write_firehose

pytestmark = pytest.mark.slow

SCHEMA: dict[str, Any] = {
    "name": "visits",
    "target": "churned",
    "positive_class": "yes",
    "numeric": ["person_number", "spend"],
    "categorical": ["plan"],
    "id_column": "visit_id",
    "group_column": "person",
}
OUTPUTS = ("train", "validation", "test")


def visits(people: int = 120, seed: int = 3) -> list[dict[str, Any]]:
    """Several visits per person; ``person_number`` repeats the group so the splits can be checked."""
    rng = np.random.default_rng(seed)
    records = []
    for p in range(people):
        churner = rng.uniform() < 0.3
        for v in range(int(rng.integers(1, 8))):
            records.append(
                {
                    "visit_id": f"v{p}-{v}",
                    "person": f"p{p}",
                    "person_number": p,
                    "spend": round(float(rng.gamma(2.0, 20.0)), 2),
                    "plan": str(rng.choice(["basic", "plus", "pro"])),
                    "churned": "yes" if churner and rng.uniform() < 0.8 else "no",
                }
            )
    return records


def preprocess(root: Path, records: list[dict[str, Any]]) -> Sandbox:
    job = Sandbox(root, SCHEMA)
    write_firehose(job.processing_input("raw"), SCHEMA["name"], records)
    check(job.preprocess("--seed", "9"))
    return job


def test_no_person_is_in_two_splits_and_input_order_changes_nothing(tmp_path: Path) -> None:
    records = visits()
    job = preprocess(tmp_path / "a", records)
    people = []
    for name in OUTPUTS:
        rows = np.loadtxt(job.processing_output(name) / f"{name}.csv", delimiter=",", ndmin=2)
        people.append(set(rows[:, 1].astype(int).tolist()))  # person_number: the first feature
        assert len(np.unique(rows[:, 0])) == 2, f"{name} has both classes"
    assert not (people[0] & people[1] or people[0] & people[2] or people[1] & people[2])
    report = json.loads((job.processing_output("report") / "data_report.json").read_text())
    assert report["split"]["group_column"] == "person" and report["split"]["groups"] == 120

    shuffled = list(records)
    random.Random(4).shuffle(shuffled)
    again = preprocess(tmp_path / "b", shuffled)
    for name in (*OUTPUTS, "preprocessor"):
        for path in sorted(job.processing_output(name).iterdir()):
            assert (again.processing_output(name) / path.name).read_bytes() == path.read_bytes(), path.name


def test_train_files_split_the_training_rows_for_sharded_instances(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "files", SCHEMA)
    write_firehose(job.processing_input("raw"), SCHEMA["name"], visits())
    check(job.preprocess("--seed", "9", "--train-files", "3"))
    files = sorted(p.name for p in job.processing_output("train").iterdir())
    assert files == ["train-0001-of-0003.csv", "train-0002-of-0003.csv", "train-0003-of-0003.csv"]
    whole = preprocess(tmp_path / "one", visits())
    rows = sorted(
        line for name in files for line in (job.processing_output("train") / name).read_text().splitlines()
    )
    assert rows == sorted((whole.processing_output("train") / "train.csv").read_text().splitlines())
    bad = job.preprocess("--train-files", "0")
    assert bad.returncode == 1 and "--train-files: invalid _count value" not in job.failure
    assert "'0' is not a file count in 1..1000" in job.failure
