"""One reader of a pipeline definition, for every consumer.

It knows what SageMaker knows about a definition: the parameter types and execution variables a
``Get`` may name, the properties each step type exposes (its Describe* response shape), property
files and ``Std:JsonGet``, SageMaker's functions, the step graph (names, ``DependsOn``, the steps a
step reads, condition branches) and where each step names its images. ``read_definition`` returns
neutral :class:`Problem` s: ``rookery pipeline validate`` reports them as findings, the local engine
refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.reading.graph import dependency_problems, step_name_problems
from pipelines.reading.problem import PIPELINE, Problem
from pipelines.reading.references import reference_problems
from pipelines.reading.variables import parameter_problems

__all__ = ["PIPELINE", "Problem", "read_definition"]


def read_definition(definition: Mapping[str, Any]) -> list[Problem]:
    """Every problem: parameters, step names, dependencies, then each step's expressions."""
    return [
        *parameter_problems(definition),
        *step_name_problems(definition),
        *dependency_problems(definition),
        *reference_problems(definition),
    ]
