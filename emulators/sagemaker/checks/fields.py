"""A step's fields as the checks read them: as written, or resolved with the execution's parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from emulators.core.images import ImageMap
from emulators.sagemaker.exceptions import UnsupportedDefinition
from emulators.sagemaker.pipeline.expressions import ExpressionError, Scope
from pipelines.definition import field_path
from pipelines.reading.containers import training_job_definitions
from pipelines.reading.paths import tokens
from pipelines.reading.variables import EXECUTION_VARIABLES

# A value of each pipeline parameter type, for resolving expressions before anything runs.
_PLACEHOLDERS: Final = {"String": "x", "Integer": 1, "Float": 1.0, "Boolean": True}


class _Deferred(Exception):  # noqa: N818 - control flow: the value depends on a step not yet run
    pass


def static_scope(parameters: Mapping[str, Any]) -> Scope:
    """What expressions read before anything runs: the parameters, a value of each execution
    variable's type, and nothing of any step (those fields are checked again when the step runs)."""

    def deferred(*_: Any) -> Any:
        raise _Deferred

    execution = {name: _PLACEHOLDERS[v.value_type] for name, v in EXECUTION_VARIABLES.items()}
    return Scope(parameters, execution, deferred, deferred)


class StepFields:
    """One step being checked: its arguments, the images the engine runs, the scope to resolve with."""

    def __init__(self, step: Mapping[str, Any], images: ImageMap, scope: Scope) -> None:
        self.step = step
        self.name = str(step.get("Name"))
        self.kind = str(step.get("Type"))
        self.args: Mapping[str, Any] = step.get("Arguments") or {}
        self.images = images
        self.scope = scope

    def refuse(self, field: str, problem: str) -> UnsupportedDefinition:
        return UnsupportedDefinition(self.name, field, problem)

    def raw(self, path: str) -> Any:
        """The unresolved field at ``Arguments.<path>`` (``A.B[0].C``), None when absent."""
        current: Any = self.args
        for part in tokens(path):
            if isinstance(part, int):
                current = current[part] if isinstance(current, list) and part < len(current) else None
            else:
                key = part if isinstance(part, str) else part[0]
                current = current.get(key) if isinstance(current, Mapping) else None
        return current

    def value(self, path: str, *, required: bool = False) -> Any:
        """``Arguments.<path>`` resolved with the parameters; None when it depends on a step."""
        current = self.raw(path)
        if current is None:
            if required:
                raise self.refuse(f"Arguments.{path}", "is required")
            return None
        try:
            return self.scope.resolve(current)
        except _Deferred:
            return None
        except ExpressionError as exc:
            raise self.refuse(f"Arguments.{path}", str(exc)) from None

    def one_of(self, path: str, allowed: tuple[str | None, ...], why: str) -> None:
        value = self.value(path)
        if value not in allowed:
            shown = [a for a in allowed if a is not None]
            raise self.refuse(f"Arguments.{path}", f"{value!r} is not supported locally ({why}); use {shown}")

    def absent(self, path: str, why: str) -> None:
        current = self.raw(path)
        if current not in (None, [], {}):
            raise self.refuse(f"Arguments.{path}", f"is not supported by the local engine ({why}); remove it")

    def training_jobs(self) -> list[tuple[str, Mapping[str, Any]]]:
        """The training job definitions of a Training or Tuning step, each with its path prefix
        (``""`` or ``"TrainingJobDefinition."``)."""
        if self.kind == "Training":
            return [("", self.args)]
        if self.kind == "Tuning":
            return [(f"{field_path(*at)}.", job) for at, job in training_job_definitions(self.args)]
        return []
