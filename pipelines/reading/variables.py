"""What a ``Get`` names besides a step: a declared parameter (of SageMaker's four parameter types) or
one of SageMaker's execution variables, each with the type its value has at run time.

The execution variables are exactly those of the SDK that renders the definition
(``sagemaker.core.workflow.execution_variables.ExecutionVariables``, sagemaker-core 2.27), which
documents every one as a string at run time (``ExecutionVariable.to_string``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipelines.reading.problem import PIPELINE, Problem

PARAMETER_TYPES: Final = ("String", "Integer", "Float", "Boolean")


@dataclass(frozen=True)
class ExecutionVariable:
    """``{"Get": "Execution.<name>"}``: a value SageMaker supplies for each execution."""

    name: str
    meaning: str
    job_of: str | None = None  # the step type whose own job it names; None: one value per execution
    value_type: str = "String"  # a pipeline parameter type (PARAMETER_TYPES)


EXECUTION_VARIABLES: Final[Mapping[str, ExecutionVariable]] = {
    variable.name: variable
    for variable in (
        ExecutionVariable("StartDateTime", "when the execution started"),
        ExecutionVariable("CurrentDateTime", "when the step that reads it starts"),
        ExecutionVariable("PipelineName", "the pipeline's name"),
        ExecutionVariable("PipelineArn", "the pipeline's ARN"),
        ExecutionVariable("PipelineExecutionId", "the execution's id"),
        ExecutionVariable("PipelineExecutionArn", "the execution's ARN"),
        ExecutionVariable("TrainingJobName", "the name of the step's training job", job_of="Training"),
        ExecutionVariable("ProcessingJobName", "the name of the step's processing job", job_of="Processing"),
    )
}


def declared_parameters(definition: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(p.get("Name")) for p in definition.get("Parameters") or [])


def parameter_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """Every declared parameter has one of SageMaker's parameter types."""
    problems = []
    for i, parameter in enumerate(definition.get("Parameters") or []):
        kind = parameter.get("Type", "String")
        if kind not in PARAMETER_TYPES:
            problems.append(
                Problem(
                    PIPELINE,
                    f"Parameters[{i}].Type",
                    f"{kind!r} is not a pipeline parameter type",
                    f"use one of {', '.join(PARAMETER_TYPES)}",
                )
            )
    return problems
