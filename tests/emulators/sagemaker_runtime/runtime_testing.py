"""Helpers for the local endpoint tests (a uniquely named module: conftest.py is not importable).

One real model is trained per test session by the project image's own preprocess and train
entrypoints on the Palmer penguins (``bench.serving.build_model``), shared by every xdist worker
through a file lock; each test registers its versions of it in a fresh local registry.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from bench.serving import build_model
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker.models import LocalRegistry, ModelPackage
from emulators.sagemaker_runtime import EndpointSettings
from pipelines.settings import PipelineResources
from stage import Stage, load_stage
from stage.names import model_package_group_name
from stage.serving import DeploymentPolicy, RollbackAlarms, ServingSettings

DEV: Final = load_stage("dev")
GROUP: Final = model_package_group_name(DEV)
RESOURCES: Final = PipelineResources.placeholders(DEV)
IMAGE: Final = RESOURCES.image_uri
RAW_BUCKET: Final = RESOURCES.raw_bucket
MODEL_URI: Final = f"s3://{RESOURCES.artifacts_bucket}/models/penguins/output/model.tar.gz"
WORKERS_ENV: Final = "SAGEMAKER_MODEL_SERVER_WORKERS"
RECORD_CSV: Final = b"39.1,18.7,181,3750,Adelie,Torgersen\n"
RECORD_JSON: Final = (
    b'{"bill_length_mm": 46.5, "bill_depth_mm": 14.8, "flipper_length_mm": 217, '
    b'"body_mass_g": 5200, "species": "Gentoo", "island": "Biscoe"}'
)


@dataclass(frozen=True)
class TrainedModel:
    archive: Path  # model.tar.gz of the real preprocess + train entrypoints


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """The temporary root every xdist worker shares (each worker's basetemp sits inside it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def trained_model(shared: Path) -> TrainedModel:
    """Train once per session (the first worker to get here; the others wait and reuse it)."""
    shared.mkdir(parents=True, exist_ok=True)
    folder, archive = shared / "penguins-model", shared / "penguins-model.tar.gz"
    with (shared / "penguins-model.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not archive.is_file():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                model_dir, _ = build_model(folder)
                partial = archive.with_suffix(".part")
                with tarfile.open(partial, "w:gz") as tar:
                    for path in sorted(model_dir.iterdir()):
                        tar.add(path, arcname=path.name)
                partial.rename(archive)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return TrainedModel(archive)


def registered(home: LocalHome, model: TrainedModel, *, status: str = "Approved") -> ModelPackage:
    """Version 1 of the dev stage's group, holding the trained model (as the pipeline registers it)."""
    target = LocalS3(home).path(MODEL_URI)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model.archive, target)
    return LocalRegistry(home).create(
        GROUP,
        region=DEV.region,
        account=RESOURCES.role_arn.split(":")[4],
        approval_status=status,
        # One worker per model server: two fleets run side by side on a small test machine.
        inference_spec={"image": IMAGE, "model_data_url": MODEL_URI, "environment": {WORKERS_ENV: "1"}},
        model_metrics={},
        metrics={},
        execution_id=None,
    )


def serving_stage(
    *,
    traffic: str = "canary",
    instances: int = 2,
    wait_seconds: int = 20,
    termination_wait_seconds: int = 10,
    period_seconds: int = 10,
    evaluation_periods: int = 3,
    datapoints_to_alarm: int = 2,
    **alarms: Any,
) -> Stage:
    """The dev stage with its serving policy replaced (validated as a stage file would be)."""
    serving = ServingSettings(
        initial_instance_count=instances,
        min_instances=instances,
        max_instances=instances,
        deployment=DeploymentPolicy(
            traffic=traffic,  # type: ignore[arg-type]
            canary_instances=1,
            linear_step_instances=1,
            wait_seconds=wait_seconds,
            termination_wait_seconds=termination_wait_seconds,
            maximum_execution_timeout_seconds=1800,
        ),
        alarms=RollbackAlarms(
            period_seconds=period_seconds,  # type: ignore[arg-type]
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            **alarms,
        ),
    )
    return DEV.model_copy(update={"serving": serving})


def settings_for(stage: Stage, *, time_scale: float) -> EndpointSettings:
    return EndpointSettings.from_stage(stage, raw_bucket=RAW_BUCKET, time_scale=time_scale)


def project_images() -> ImageMap:
    return ImageMap.project(IMAGE)
