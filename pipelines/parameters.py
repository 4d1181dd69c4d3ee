"""Pipeline parameter names (an interface: the trigger Lambda, the local engine and ``--param``
use them) and the checks that turn ``NAME=VALUE`` overrides into typed execution parameters.

Pure functions over the rendered definition JSON; no SDK import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pipelines.definition import iter_steps
from rookery_contracts.pipeline import INPUT_DATA_PARAMETER
from stage import APPROVAL_STATUSES, PENDING_MANUAL_APPROVAL

INPUT_DATA_URI: Final = INPUT_DATA_PARAMETER
PROCESSING_INSTANCE_TYPE: Final = "ProcessingInstanceType"
PROCESSING_INSTANCE_COUNT: Final = "ProcessingInstanceCount"
TRAINING_INSTANCE_TYPE: Final = "TrainingInstanceType"
TRAINING_INSTANCE_COUNT: Final = "TrainingInstanceCount"
TRAINING_MAX_RUNTIME: Final = "TrainingMaxRuntimeSeconds"
TRANSFORM_INSTANCE_TYPE: Final = "TransformInstanceType"
TRANSFORM_INSTANCE_COUNT: Final = "TransformInstanceCount"
AUC_THRESHOLD: Final = "AucThreshold"
OPERATING_POINT: Final = "OperatingPoint"
MODEL_APPROVAL_STATUS: Final = "ModelApprovalStatus"

ALL: Final = (
    INPUT_DATA_URI,
    PROCESSING_INSTANCE_TYPE,
    PROCESSING_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    TRAINING_MAX_RUNTIME,
    TRANSFORM_INSTANCE_TYPE,
    TRANSFORM_INSTANCE_COUNT,
    AUC_THRESHOLD,
    OPERATING_POINT,
    MODEL_APPROVAL_STATUS,
)

OPERATING_POINT_KINDS: Final = ("min_sensitivity", "min_specificity", "best_f1")


class ParameterError(ValueError):
    """An override does not fit the pipeline's parameters; the message names it and the fix."""


def operating_point_problem(value: str) -> str | None:
    """Why ``value`` is not an operating point (``min_sensitivity:0.85``, ``best_f1``), or None."""
    kind, _, bar = value.partition(":")
    if kind not in OPERATING_POINT_KINDS:
        return f"unknown kind {kind!r}; use one of {', '.join(OPERATING_POINT_KINDS)}"
    if kind == "best_f1":
        return "'best_f1' takes no value; write just best_f1" if bar else None
    try:
        number = float(bar)
    except ValueError:
        return f"{kind} needs a bar between 0 and 1, e.g. {kind}:0.9"
    if not 0 < number < 1:
        return f"{kind} needs a bar strictly between 0 and 1, e.g. {kind}:0.9"
    return None


def _typed(name: str, kind: str, raw: str) -> str | int | float | bool:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
    except ValueError:
        raise ParameterError(
            f"--param {name}={raw}: {name} is a{'n' if kind == 'Integer' else ''} {kind}"
        ) from None
    if kind == "Boolean":
        if raw.lower() not in ("true", "false"):
            raise ParameterError(f"--param {name}={raw}: {name} is a Boolean; write true or false")
        return raw.lower() == "true"
    return raw


def _semantic_problem(name: str, value: str | int | float | bool) -> str | None:
    """Rules the service would only enforce once a job starts (or never): check them up front."""
    if name == INPUT_DATA_URI and not str(value).startswith("s3://"):
        return "must be an s3:// URI (the raw data prefix), e.g. s3://bucket/penguins/"
    if name.endswith("InstanceCount") and isinstance(value, int) and value < 1:
        return "must be at least 1"
    if name.endswith("InstanceType") and not str(value).startswith("ml."):
        return "must be a SageMaker instance type such as ml.m5.large"
    if name == AUC_THRESHOLD and isinstance(value, float) and not 0 < value <= 1:
        return "must be in (0, 1]"
    if name == OPERATING_POINT:
        return operating_point_problem(str(value))
    if name == MODEL_APPROVAL_STATUS and value not in APPROVAL_STATUSES:
        return f"must be one of {', '.join(APPROVAL_STATUSES)}"
    if name == TRAINING_MAX_RUNTIME and isinstance(value, int) and value < 1:
        return "must be a positive number of seconds"
    return None


def _enum_problem(spec: Mapping[str, Any], value: str | int | float | bool) -> str | None:
    """A value outside the parameter's ``EnumValues`` (SageMaker refuses it when the execution starts)."""
    allowed = spec.get("EnumValues")
    if not allowed or value in allowed:
        return None
    if spec.get("Name") == MODEL_APPROVAL_STATUS and list(allowed) == [PENDING_MANUAL_APPROVAL]:
        return (
            f"must be {allowed[0]}: this stage requires a person to approve every version (control R1); "
            "approve it in the registry after the run"
        )
    return f"must be one of {', '.join(map(str, allowed))} (the definition's EnumValues)"


def declared(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The definition's parameters by name (``{"Name", "Type", "DefaultValue", ...}``)."""
    return {p["Name"]: p for p in definition.get("Parameters", [])}


def max_wait_seconds(definition: Mapping[str, Any]) -> int | None:
    """The spot training wait bound (``MaxWaitTimeInSeconds``) of the training/tuning step, if any."""
    for step in iter_steps(definition.get("Steps", [])):
        args = step.get("Arguments", {})
        stopping = args.get("StoppingCondition") or args.get("TrainingJobDefinition", {}).get(
            "StoppingCondition"
        )
        if isinstance(stopping, Mapping) and isinstance(stopping.get("MaxWaitTimeInSeconds"), int):
            return int(stopping["MaxWaitTimeInSeconds"])
    return None


def parse_overrides(definition: Mapping[str, Any], pairs: Sequence[str]) -> dict[str, str]:
    """Turn ``--param NAME=VALUE`` strings into checked overrides: name -> value as the API sends it.

    The one parser of ``--param`` (``rookery pipeline start``, ``rookery local run``, ``rookery
    demo`` and the local engine). Malformed pairs, unknown names, bad types and values the jobs
    would reject raise ``ParameterError`` naming the parameter and the fix. A name given twice
    takes the later value. Values are strings, as StartPipelineExecution requires.
    """
    known = declared(definition)
    merged: dict[str, str | int | float | bool] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--param {pair!r}: write NAME=VALUE, e.g. --param {AUC_THRESHOLD}=0.9")
        if name not in known:
            raise ParameterError(
                f"--param {name}: the pipeline has no parameter {name!r}; known: {', '.join(sorted(known))}"
            )
        value = _typed(name, str(known[name].get("Type", "String")), raw.strip())
        problem = _semantic_problem(name, value) or _enum_problem(known[name], value)
        if problem:
            raise ParameterError(f"--param {name}={raw}: {name} {problem}")
        merged[name] = value
    runtime = merged.get(TRAINING_MAX_RUNTIME)
    wait = max_wait_seconds(definition)
    if isinstance(runtime, int) and wait is not None and runtime > wait:
        raise ParameterError(
            f"--param {TRAINING_MAX_RUNTIME}={runtime}: spot training waits at most {wait} s "
            f"(MaxWaitTimeInSeconds), and SageMaker rejects a runtime above it; use at most {wait} "
            "or raise ml.training.max_wait_seconds in the stage and render again"
        )
    return {name: _wire(value) for name, value in merged.items()}


def pipeline_parameters(overrides: Mapping[str, str]) -> list[dict[str, str]]:
    """Overrides as StartPipelineExecution's ``PipelineParameters``."""
    return [{"Name": name, "Value": value} for name, value in overrides.items()]


def _wire(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
