"""The step types the engine emulates, and the form of dependency it runs (a plain step name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from emulators.sagemaker.exceptions import UnsupportedDefinition
from pipelines.definition import iter_steps

SUPPORTED_STEPS: Final = (
    "Processing",
    "Training",
    "Tuning",
    "Condition",
    "Fail",
    "RegisterModel",
    "Model",
    "Transform",
)


def check_steps(definition: Mapping[str, Any]) -> None:
    """Every step (the branches of a condition included) has a type the engine runs, and each of
    its ``DependsOn`` waits for the other step's success."""
    for step in iter_steps(definition.get("Steps", [])):
        name = str(step.get("Name"))
        kind = step.get("Type")
        if kind not in SUPPORTED_STEPS:
            raise UnsupportedDefinition(
                name,
                "Type",
                f"step type {kind!r} cannot run locally (the engine runs: {', '.join(SUPPORTED_STEPS)})",
            )
        for j, dependency in enumerate(step.get("DependsOn", []) or []):
            if not isinstance(dependency, str):
                raise UnsupportedDefinition(
                    name,
                    f"DependsOn[{j}]",
                    f"{dependency!r}: a dependency with a trigger (run on the other step's failure, ...) "
                    "is not supported locally; depend on the step's success by naming it",
                )
