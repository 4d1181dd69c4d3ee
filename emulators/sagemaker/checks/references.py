"""The definition reader's problems as refusals, and references SageMaker resolves but the engine cannot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emulators.sagemaker.exceptions import UnsupportedDefinition
from pipelines.definition import iter_steps, own_arguments
from pipelines.reading import Problem
from pipelines.reading.references import reference_problems, walk_expressions
from pipelines.reading.variables import EXECUTION_VARIABLES


def refuse_first(problems: Sequence[Problem]) -> None:
    """Raise the first of the definition reader's problems as a refusal (step, field, what and fix)."""
    if problems:
        problem = problems[0]
        raise UnsupportedDefinition(problem.step, problem.field, problem.text)


def check_references(definition: Mapping[str, Any]) -> None:
    """The reader's problems with expressions, then the local limits: ``Std:JsonGet`` of an S3
    object, and a job's name outside the step that starts the job."""
    refuse_first(reference_problems(definition))
    for step in iter_steps(definition.get("Steps", [])):
        name, kind = str(step.get("Name")), str(step.get("Type"))
        for path, expression in walk_expressions(own_arguments(step), "Arguments"):
            body = expression.get("Std:JsonGet")
            if isinstance(body, Mapping) and "S3Uri" in body:
                raise UnsupportedDefinition(
                    name,
                    f"{path}.S3Uri",
                    "Std:JsonGet over an S3Uri is not supported locally; use a PropertyFile",
                )
            reference = expression.get("Get")
            if not (isinstance(reference, str) and reference.startswith("Execution.")):
                continue
            variable = EXECUTION_VARIABLES.get(reference.removeprefix("Execution."))
            if variable is not None and variable.job_of not in (None, kind):
                raise UnsupportedDefinition(
                    name,
                    path,
                    f"Get {reference}: the local engine gives it a value only in a {variable.job_of} step "
                    f"({variable.meaning}), not in a {kind} step; read the job's name from that step "
                    f"instead (Steps.<step>.{variable.name})",
                )
