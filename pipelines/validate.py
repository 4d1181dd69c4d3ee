"""``rookery pipeline validate``: every check over a definition, as one list of findings.

The perimeter (T1-T6), the API request shapes (SHAPE) and what the definition reader finds in
the references, functions and step graph (REF). Pure; reads nothing but the definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.findings import Finding
from pipelines.perimeter import Expected, check_perimeter
from pipelines.reading import read_definition
from pipelines.settings import PipelineResources
from pipelines.shapes import validate_shapes


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
    """The definition reader's problems (references, functions, the step graph) as REF findings."""
    return [Finding(p.step, p.field, "REF", p.what, p.fix) for p in read_definition(definition)]


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
