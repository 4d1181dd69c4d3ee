"""One job's ``/opt/ml`` on this machine: SageMaker's container paths under one folder, the input config
SageMaker writes before a training job starts, and model archives packed as SageMaker packs them.

The local engine gives every job one. The image tests and the benchmarks build the same to run an
entrypoint directly, with the image map's command and environment (``ImageMap.command``,
``ImageMap.environment``), as the engine does.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from rookery_contracts.model_layout import MODEL_ARCHIVE

OPT_ML: Final = PurePosixPath("/opt/ml")
# The image URI the project image is mapped under when its entrypoints run outside a pipeline
# (``ImageMap.project(LOCAL_IMAGE)``: the image tests, the benchmarks).
LOCAL_IMAGE: Final = "rookery-image:local"


def pack(folder: Path, archive: Path) -> Path:
    """``archive`` (a .tar.gz) of every entry in ``folder``, as SageMaker packs ``/opt/ml/model``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


@dataclass(frozen=True)
class Sandbox:
    """A job's ``/opt/ml``, at ``base`` (the image reads it from ``SAGEMAKER_BASE_DIR``)."""

    base: Path

    def path(self, container_path: str | PurePosixPath) -> Path:
        """``/opt/ml/x/y`` inside the container -> ``<base>/x/y`` (callers checked it is under /opt/ml)."""
        relative = PurePosixPath(container_path).relative_to(OPT_ML)
        return self.base.joinpath(*relative.parts)

    @property
    def config_dir(self) -> Path:
        return self.base / "input" / "config"

    def channel(self, name: str) -> Path:
        """A training channel's folder, ``/opt/ml/input/data/<name>``."""
        return self.base / "input" / "data" / name

    def processing_input(self, name: str) -> Path:
        return self.base / "processing" / "input" / name

    def processing_output(self, name: str) -> Path:
        return self.base / "processing" / "output" / name

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def failure_file(self) -> Path:
        """Where a job writes why it failed, ``/opt/ml/output/failure``."""
        return self.base / "output" / "failure"

    def write_training_config(
        self,
        hyperparameters: Mapping[str, str],
        channels: Mapping[str, Mapping[str, Any]],
        resources: Mapping[str, Any],
    ) -> None:
        """``input/config/{hyperparameters,inputdataconfig,resourceconfig}.json`` as SageMaker writes them:
        every hyperparameter a string, one entry per channel, the hosts of the job."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for name, document in (
            ("hyperparameters.json", dict(hyperparameters)),
            ("inputdataconfig.json", {k: dict(v) for k, v in channels.items()}),
            ("resourceconfig.json", dict(resources)),
        ):
            (self.config_dir / name).write_text(json.dumps(document, indent=2))

    def pack_model(self, into: Path) -> Path:
        """``<into>/model.tar.gz`` of ``/opt/ml/model``, as SageMaker uploads it."""
        return pack(self.model_dir, into / MODEL_ARCHIVE)
