"""What a step runner gets from the engine: the resolved arguments, its sandbox, log and job slots, and
the local S3 with SageMaker's wording for what is missing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.core.errors import LocalEngineError
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.s3 import LocalS3, NoObjectsError
from emulators.sagemaker import responses
from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.steps.spot import InterruptPlan


def no_objects(uri: str, what: str) -> StepFailedError:
    """The step's failure when an input location holds nothing, as SageMaker words it."""
    return StepFailedError(
        f"ClientError: No S3 objects found under S3 URL {uri!r} given in {what}. Make sure the data "
        "exists under that prefix of the local S3 folder (for the raw data: ingest it, or pass --data)"
    )


@dataclass
class StepResult:
    """What a runner hands back: the step's SageMaker-shaped properties and local-only metrics."""

    properties: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """One step's run: everything a runner needs, nothing of the scheduler."""

    home: LocalHome
    images: ImageMap
    execution_id: str
    step_name: str
    step_type: str
    job_name: str  # the job (or model) the step creates, named the way pipeline steps name them
    args: dict[str, Any]  # the step's Arguments with every expression resolved
    raw_step: Mapping[str, Any]
    job_dir: Path
    log_dir: Path
    region: str
    account: str
    slots: threading.Semaphore
    max_parallel: int
    cancel: threading.Event
    emit: Callable[[str], None]
    interrupt: InterruptPlan | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.step_name}.log"

    @property
    def s3(self) -> LocalS3:
        return LocalS3(self.home)

    def download(self, uri: str, data_type: str, dest: Path, what: str) -> int:
        """Copy an input's objects into the sandbox (``S3Prefix``: every object under ``uri``;
        ``S3Object``: exactly that one); the step fails as SageMaker's does when there are none."""
        try:
            return self.s3.download(uri, dest, exact=data_type == "S3Object")
        except NoObjectsError:
            raise no_objects(uri, what) from None

    def require_object(self, uri: str, field: str) -> None:
        """The step fails with SageMaker's ValidationException when ``uri`` names no object."""
        try:
            exists = self.s3.path(uri).is_file()
        except LocalEngineError as exc:
            raise StepFailedError(f"ValidationException: {field}: {exc}") from None
        if not exists:
            raise StepFailedError(f"ValidationException: {field} {uri} does not exist in the local S3 folder")

    def arn(self, kind: str, name: str) -> str:
        return responses.arn(self.region, self.account, kind, name)
