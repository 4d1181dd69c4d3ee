"""A job's /opt/ml on this machine: container paths mapped under the folder, the training job's input
config as SageMaker writes it, the model packed as SageMaker uploads it (``emulators/core/sandbox.py``)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from emulators.core.sandbox import Sandbox


def test_container_paths_map_under_the_sandbox(tmp_path: Path) -> None:
    job = Sandbox(tmp_path)

    assert job.path("/opt/ml/processing/input/raw") == tmp_path / "processing" / "input" / "raw"
    assert job.processing_input("raw") == job.path("/opt/ml/processing/input/raw")
    assert job.processing_output("report") == job.path("/opt/ml/processing/output/report")
    assert job.channel("train") == job.path("/opt/ml/input/data/train")
    assert job.model_dir == job.path("/opt/ml/model")
    assert job.failure_file == job.path("/opt/ml/output/failure")
    with pytest.raises(ValueError):
        job.path("/tmp/elsewhere")


def test_the_training_config_is_written_as_sagemaker_writes_it(tmp_path: Path) -> None:
    job = Sandbox(tmp_path)

    job.write_training_config({"eta": "0.3"}, {"train": {"ContentType": "text/csv"}}, {"hosts": ["algo-1"]})

    config = tmp_path / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text()) == {"eta": "0.3"}
    assert json.loads((config / "inputdataconfig.json").read_text()) == {"train": {"ContentType": "text/csv"}}
    assert json.loads((config / "resourceconfig.json").read_text()) == {"hosts": ["algo-1"]}


def test_the_model_is_packed_flat_into_model_tar_gz(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "job")
    job.model_dir.mkdir(parents=True)
    (job.model_dir / "b.json").write_text("{}")
    (job.model_dir / "a.ubj").write_bytes(b"model")

    archive = job.pack_model(tmp_path / "out")

    assert archive == tmp_path / "out" / "model.tar.gz"
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["a.ubj", "b.json"]
