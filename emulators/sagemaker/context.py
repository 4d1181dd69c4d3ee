"""What a step runner gets from the engine: the resolved arguments, its sandbox, log and job slots."""

from __future__ import annotations

import re
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from emulators.core.errors import StepFailedError
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.core.procs import Watch
from emulators.s3 import LocalS3, NoObjectsError

_ALPHABET: Final = string.ascii_lowercase + string.digits
OPT_ML: Final = PurePosixPath("/opt/ml")


def random_id(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def job_name(execution_id: str, step_name: str, limit: int = 63) -> str:
    """``pipelines-<execution id>-<step>-<random>``, the way pipeline steps name their jobs."""
    suffix = random_id(10)
    room = limit - len("pipelines-") - len(execution_id) - len(suffix) - 2
    stem = re.sub(r"[^A-Za-z0-9-]", "-", step_name)[: max(room, 1)]
    return f"pipelines-{execution_id}-{stem}-{suffix}"


def in_sandbox(sandbox: Path, container_path: str) -> Path:
    """``/opt/ml/x/y`` inside the container -> ``<sandbox>/x/y`` (callers checked it is under /opt/ml)."""
    relative = PurePosixPath(container_path).relative_to(OPT_ML)
    return sandbox.joinpath(*relative.parts)


def no_objects(uri: str, what: str) -> StepFailedError:
    """The step's failure when an input location holds nothing, as SageMaker words it."""
    return StepFailedError(
        f"ClientError: No S3 objects found under S3 URL {uri!r} given in {what}. Make sure the data "
        "exists under that prefix of the local S3 folder (for the raw data: ingest it, or pass --data)"
    )


@dataclass(frozen=True)
class InterruptPlan:
    """When to reclaim a managed-spot training job, the way a spot interruption does.

    The engine sends SIGTERM (SageMaker's two-minute warning), lets the job save a checkpoint and
    exit, uploads ``/opt/ml/checkpoints`` to ``CheckpointConfig.S3Uri``, then starts the job again
    in a fresh sandbox with the checkpoints restored, as SageMaker does after a spot reclaim.
    Triggers (any that is set fires): ``after_seconds`` of runtime, ``on_checkpoint`` (a new file
    appears in the checkpoint folder), ``log_pattern`` (a regex matching a log line). ``times``
    interruptions per job; ``step`` limits it to one Training or Tuning step (all when None).
    """

    after_seconds: float | None = None
    on_checkpoint: bool = False
    log_pattern: str | None = None
    times: int = 1
    step: str | None = None

    def __post_init__(self) -> None:
        if self.after_seconds is None and not self.on_checkpoint and self.log_pattern is None:
            raise ValueError("InterruptPlan needs a trigger: after_seconds, on_checkpoint or log_pattern")
        if self.times < 1:
            raise ValueError("InterruptPlan.times must be at least 1")
        if self.log_pattern is not None:
            re.compile(self.log_pattern)

    def applies_to(self, step_name: str) -> bool:
        return self.step is None or self.step == step_name


class Trigger:
    """One attempt's interruption trigger: polled by the process runner, fed every log line."""

    def __init__(self, plan: InterruptPlan, checkpoints: Path | None) -> None:
        self.plan = plan
        self.checkpoints = checkpoints
        self.seen = self._files()
        self.matched = threading.Event()
        self.pattern = re.compile(plan.log_pattern) if plan.log_pattern else None

    def _files(self) -> set[str]:
        if self.checkpoints is None or not self.checkpoints.is_dir():
            return set()
        return {p.name for p in self.checkpoints.iterdir()}

    def line(self, text: str) -> None:
        if self.pattern is not None and self.pattern.search(text):
            self.matched.set()

    def __call__(self, watch: Watch) -> bool:
        if self.matched.is_set():
            return True
        if self.plan.after_seconds is not None and watch.elapsed >= self.plan.after_seconds:
            return True
        return self.plan.on_checkpoint and bool(self._files() - self.seen)


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

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"
