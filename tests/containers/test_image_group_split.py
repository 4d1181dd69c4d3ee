"""The real preprocessing jobs split by a keyed hash: the same records in any order, file layout or
number of hosts give the same outputs, and with a group column no entity is in two splits."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest
from image_helpers import Sandbox, check, write_firehose

from emulators.sagemaker.steps.hosts import keep_share
from pipelines.contract import PREPROCESS_PASSES

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


@pytest.mark.parametrize("hosts", [2, 3])
def test_the_three_jobs_on_several_hosts_write_the_rows_and_preprocessor_of_one(
    tmp_path: Path, hosts: int
) -> None:
    """The real entrypoints, each host in its own sandbox with its share of the raw objects (as
    ShardedByS3Key gives them) and every host's output of the previous job: the union of the hosts'
    splits is one host's, no group is split, the first host writes the preprocessor one host fits."""
    records = visits()
    whole = preprocess(tmp_path / "one", records)
    raw = tmp_path / "raw"
    write_firehose(raw, SCHEMA["name"], records)
    names = [f"algo-{k}" for k in range(1, hosts + 1)]
    jobs = [Sandbox(tmp_path / "hosts" / name, SCHEMA) for name in names]
    for index, (name, job) in enumerate(zip(names, jobs, strict=True)):
        shutil.copytree(raw, job.processing_input("raw"))
        keep_share(job.processing_input("raw"), index, hosts)
        (job.base / "config").mkdir(parents=True)
        (job.base / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": name, "hosts": names})
        )
    for entrypoint, reads, _ in PREPROCESS_PASSES:
        if reads is not None:
            for job in jobs:
                for other in jobs:
                    shutil.copytree(
                        other.processing_output(reads), job.processing_input(reads), dirs_exist_ok=True
                    )
        for job in jobs:
            check(job.run(PurePosixPath(entrypoint[-1]).name, "--seed", "9"))

    def rows(folders: list[Path]) -> list[str]:
        return sorted(
            line
            for f in folders
            for path in sorted(f.glob("*.csv"))
            for line in path.read_text().splitlines()
        )

    for split in OUTPUTS:
        assert rows([job.processing_output(split) for job in jobs]) == rows([whole.processing_output(split)])
        assert sorted(p.name for p in jobs[1].processing_output(split).iterdir()) == [f"{split}-algo-2.csv"]
    people = {
        split: {line.split(",")[1] for line in rows([job.processing_output(split) for job in jobs])}
        for split in OUTPUTS
    }
    assert not people["train"] & people["test"] and not people["validation"] & people["test"]
    fitted = json.loads((jobs[0].processing_output("preprocessor") / "preprocessor.json").read_text())
    expected = json.loads((whole.processing_output("preprocessor") / "preprocessor.json").read_text())
    assert [c["median"] for c in fitted["numeric"]] == [c["median"] for c in expected["numeric"]]
    assert fitted["categorical"] == expected["categorical"]
    for a, b in zip(fitted["numeric"], expected["numeric"], strict=True):
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-9) and a["std"] == pytest.approx(
            b["std"], rel=1e-9
        )
    assert [list(job.processing_output("preprocessor").iterdir()) for job in jobs[1:]] == [[]] * (hosts - 1)
    report = json.loads((jobs[0].processing_output("report") / "data_report.json").read_text())
    one = json.loads((whole.processing_output("report") / "data_report.json").read_text())
    assert {k: v for k, v in report["split"].items() if k != "instances"} == {
        k: v for k, v in one["split"].items() if k != "instances"
    }
    assert report["rows"] == one["rows"] and report["files"]["names"] == one["files"]["names"]
