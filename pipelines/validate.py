"""``rookery pipeline validate``: every check over a definition, as one list of findings.

The perimeter (T1-T6), the API request shapes (SHAPE) and the references between steps,
parameters and property files (REF). Pure; reads nothing but the definition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pipelines.definition import iter_steps, own_arguments, steps_by_name, walk
from pipelines.findings import Finding
from pipelines.perimeter import Expected, check_perimeter
from pipelines.settings import PipelineResources
from pipelines.shapes import validate_shapes

EXECUTION_VARIABLES: Final = frozenset(
    {
        "StartDateTime",
        "CurrentDateTime",
        "PipelineName",
        "PipelineArn",
        "PipelineExecutionId",
        "PipelineExecutionArn",
        "TrainingJobName",
        "ProcessingJobName",
    }
)
_STEP_REFERENCE = re.compile(r"^Steps\.([^.\[]+)")


class DefinitionError(ValueError):
    """The file is not a pipeline definition; the message says what is wrong and what to pass."""


def load_definition(path: Path) -> dict[str, Any]:
    """Read a definition file; raise ``DefinitionError`` naming the problem and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(
            f"cannot read {path}: {exc.strerror}; pass a file written by `rookery pipeline render`"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            f"{path} is not JSON ({exc.msg} at line {exc.lineno}); render it again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("Steps"), list):
        raise DefinitionError(f"{path} has no 'Steps' list: it is not a SageMaker pipeline definition")
    return data


def check_references(definition: Mapping[str, Any]) -> list[Finding]:
    """Every ``Get`` names a declared parameter, a known execution variable or an existing step."""
    parameters = {p.get("Name") for p in definition.get("Parameters", [])}
    steps = steps_by_name(definition)
    findings = []
    for step in iter_steps(definition.get("Steps", [])):
        name = str(step.get("Name"))
        for dependency in step.get("DependsOn", []) or []:
            if dependency not in steps:
                findings.append(
                    Finding(
                        name, "DependsOn", "REF", f"depends on unknown step {dependency!r}", "fix the name"
                    )
                )
        for path, value in walk(own_arguments(step), "Arguments"):
            if not (isinstance(value, Mapping) and isinstance(value.get("Get"), str)):
                continue
            reference: str = value["Get"]
            kind, _, rest = reference.partition(".")
            problem = None
            if kind == "Parameters" and rest not in parameters:
                problem = f"refers to undeclared parameter {rest!r}"
            elif kind == "Execution" and rest not in EXECUTION_VARIABLES:
                problem = f"refers to unknown execution variable {rest!r}"
            elif kind == "Steps":
                match = _STEP_REFERENCE.match(reference)
                target = steps.get(match.group(1)) if match else None
                if target is None:
                    problem = f"refers to unknown step in {reference!r}"
                elif ".PropertyFiles." in reference:
                    wanted = reference.rsplit(".", 1)[-1]
                    files = {f.get("PropertyFileName") for f in target.get("PropertyFiles", [])}
                    if wanted not in files:
                        owner = target.get("Name")
                        problem = f"refers to property file {wanted!r}, which step {owner!r} does not declare"
            elif kind not in ("Parameters", "Execution", "Steps"):
                problem = f"unknown reference {reference!r}"
            if problem:
                findings.append(
                    Finding(name, path, "REF", problem, "refer to something the definition declares")
                )
    return findings


def expected_for(resources: PipelineResources) -> Expected:
    return Expected(
        subnet_ids=frozenset(resources.subnet_ids),
        security_group_ids=frozenset(resources.security_group_ids),
        volume_kms_key=resources.volume_kms_key_arn,
        output_kms_key=resources.output_kms_key_arn,
        project_image=resources.image_uri,
    )


def validate_definition(definition: Mapping[str, Any], expected: Expected | None = None) -> list[Finding]:
    """All findings, perimeter first; ``Finding.blocking`` tells which fail the check."""
    return [
        *check_perimeter(definition, expected),
        *validate_shapes(definition),
        *check_references(definition),
    ]
