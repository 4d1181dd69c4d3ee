"""Managed spot training's interruptions, as the engine plays them: when to reclaim a job, and the trigger
polled while it runs."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from emulators.core.procs import Watch


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
