"""The SageMaker emulator's errors, over the emulators' shared base: each names what is wrong and the fix."""

from __future__ import annotations

from pathlib import Path

from emulators.core.errors import LocalEngineError


class UnsupportedDefinition(LocalEngineError):  # noqa: N818 - the name is the public API
    """The definition holds something the engine cannot run; refused before any step starts.

    ``step`` and ``field`` say where (``field`` is a path inside the step, e.g.
    ``Arguments.AppSpecification.ImageUri``).
    """

    def __init__(self, step: str, field: str, problem: str) -> None:
        self.step = step
        self.field = field
        self.problem = problem
        super().__init__(f"step {step!r}, {field}: {problem}")


class StepFailedError(LocalEngineError):
    """A step failed at run time; ``reason`` is the step's FailureReason as SageMaker would show it."""

    def __init__(
        self,
        reason: str,
        properties: dict[str, object] | None = None,
        metrics: dict[str, object] | None = None,
    ) -> None:
        self.reason = reason
        self.properties = properties or {}
        self.metrics = metrics or {}
        super().__init__(reason)


class RegistryError(LocalEngineError):
    """A model package reference or registry operation is invalid; the message says which and why."""


class ExecutionNotFoundError(LocalEngineError):
    """No execution with the given id exists under the local home."""


class DamagedExecutionError(LocalEngineError):
    """An execution record cannot be read: ``path`` names the file, the message the problem and the fix."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"the execution record {path} is damaged ({problem}); restore it, or remove the execution "
            f"with `rm -r {path.parent}`"
        )


class MonitoringError(LocalEngineError):
    """A local monitoring job could not run (no baseline, the job failed); the message says why."""
