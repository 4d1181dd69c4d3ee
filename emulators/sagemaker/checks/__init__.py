"""Everything the local engine refuses, checked before any step starts.

``check_definition`` refuses, in order: what the definition reader (``pipelines.reading``, the one
``rookery pipeline validate`` reports from) finds in the parameters and the step graph, step types
and dependencies the engine does not run (``steps``), keys off the allowlists (``keys``:
``DEFINITION_KEYS``, ``STEP_KEYS``), what the reader finds in the expressions and the references
the engine cannot resolve (``references``), and then, step by step, the job options it cannot
honour (``options``, ``conditions``), images and entrypoints the image map cannot run (``images``)
and URIs and paths it cannot map (``locations``). Fields that hold expressions are checked with
the execution's parameter values; those that depend on other steps are checked again when the step
runs (``check_resolved``). Each refusal raises :class:`UnsupportedDefinition` naming the step and
the field. What is accepted but done differently than on SageMaker comes back as a :class:`Note`,
which the execution records: nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.core.images import ImageMap
from emulators.sagemaker.checks.conditions import check_conditions
from emulators.sagemaker.checks.fields import StepFields, static_scope
from emulators.sagemaker.checks.images import check_images
from emulators.sagemaker.checks.keys import DEFINITION_KEYS, STEP_KEYS, check_keys
from emulators.sagemaker.checks.locations import check_locations
from emulators.sagemaker.checks.options import check_options
from emulators.sagemaker.checks.references import check_references, refuse_first
from emulators.sagemaker.checks.steps import SUPPORTED_STEPS, check_steps
from emulators.sagemaker.exceptions import UnsupportedDefinition
from emulators.sagemaker.models import Note
from pipelines.definition import iter_steps
from pipelines.reading import PIPELINE
from pipelines.reading.graph import dependency_problems, step_name_problems
from pipelines.reading.variables import parameter_problems

__all__ = ["DEFINITION_KEYS", "STEP_KEYS", "SUPPORTED_STEPS", "check_definition", "check_resolved"]


def _check_step(fields: StepFields) -> None:
    check_options(fields)
    check_conditions(fields)
    check_images(fields)
    check_locations(fields)


def check_resolved(step: Mapping[str, Any], arguments: Mapping[str, Any], images: ImageMap) -> None:
    """The step's checks again on its resolved arguments (values read from earlier steps included)."""
    resolved = {**step, "Arguments": {**(step.get("Arguments") or {}), **arguments}}
    _check_step(StepFields(resolved, images, static_scope({})))


def check_definition(
    definition: Mapping[str, Any], images: ImageMap, parameters: Mapping[str, Any]
) -> list[Note]:
    """Raise :class:`UnsupportedDefinition` for the first thing the engine cannot run as written;
    return the notes a run of it records (what it does differently from SageMaker)."""
    if not isinstance(definition.get("Steps"), list) or not definition["Steps"]:
        raise UnsupportedDefinition(PIPELINE, "Steps", "the definition has no steps")
    refuse_first(parameter_problems(definition))
    refuse_first(step_name_problems(definition))
    check_steps(definition)
    refuse_first(dependency_problems(definition))
    notes = check_keys(definition)
    check_references(definition)
    scope = static_scope(parameters)
    for step in iter_steps(definition["Steps"]):
        _check_step(StepFields(step, images, scope))
    return notes
