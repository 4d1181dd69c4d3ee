"""What each step type exposes to ``Get Steps.<name>.<path>``: SageMaker's Describe* response shapes.

The SDK builds step properties from the same botocore shapes (``DescribeProcessingJobResponse``
for a processing step, ...); a path is valid when it walks those shapes. The local engine fills
the properties of a finished step in exactly these shapes, so a valid path always resolves.
"""

from __future__ import annotations

import functools
from typing import Final

import botocore.session
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StructureShape

from pipelines.reading.paths import Token, show

# Step type -> the response shapes its properties follow (the SDK's shape names).
PROPERTY_SHAPES: Final[dict[str, tuple[str, ...]]] = {
    "Processing": ("DescribeProcessingJobResponse",),
    "Training": ("DescribeTrainingJobResponse",),
    "Tuning": (
        "DescribeHyperParameterTuningJobResponse",
        "ListTrainingJobsForHyperParameterTuningJobResponse",
    ),
    "Model": ("DescribeModelOutput",),
    "RegisterModel": ("DescribeModelPackageOutput",),
    "Transform": ("DescribeTransformJobResponse",),
}
# A Condition step exposes only its outcome; a Fail step nothing.
CONDITION_PROPERTIES: Final = ("Outcome",)


@functools.cache
def service_model() -> ServiceModel:
    """SageMaker's API model as botocore ships it (request and response shapes)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def _walk(shape: Shape, path: list[Token]) -> str | None:
    """None when ``path`` exists in ``shape``, else what is wrong."""
    done: list[Token] = []
    for token in path:
        done.append(token)
        if isinstance(shape, StructureShape) and isinstance(token, str):
            if token not in shape.members:
                return f"{show(done)}: {shape.name} has no member {token!r}"
            shape = shape.members[token]
        elif isinstance(shape, ListShape) and isinstance(token, int | tuple):
            shape = shape.member
        elif isinstance(shape, MapShape) and isinstance(token, tuple):
            shape = shape.value
        else:
            return f"{show(done)}: cannot index a {shape.type_name} ({shape.name}) that way"
    return None


def property_problem(step_type: str, path: list[Token]) -> str | None:
    """None when a step of ``step_type`` exposes ``path``, else the reason (naming the shape)."""
    if not path:
        return "names no property"
    if step_type == "Condition":
        if path == list(CONDITION_PROPERTIES):
            return None
        return f"{show(path)}: a Condition step exposes only {', '.join(map(repr, CONDITION_PROPERTIES))}"
    shapes = PROPERTY_SHAPES.get(step_type)
    if shapes is None:
        return f"a {step_type} step exposes no properties"
    problems = []
    for name in shapes:
        problem = _walk(service_model().shape_for(name), path)
        if problem is None:
            return None
        problems.append(problem)
    return "; ".join(problems)
