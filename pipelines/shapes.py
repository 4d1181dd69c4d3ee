"""Validate each step's ``Arguments`` against the SageMaker API request shapes shipped with botocore.

A pipeline step's arguments are the Create* request the service sends at run time, minus the
job name (the service names jobs) and with pipeline expressions in some fields. Each
expression is replaced by a typed placeholder: a ``Get`` of a parameter or an execution variable by
a value of its type, anything else by a value of the type the shape expects there, so
botocore's ``ParamValidator`` checks required members, unknown members, types and minimums,
and this module adds the enum and pattern checks botocore leaves to the service.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from pipelines.definition import is_expression, iter_steps, parameter_defaults
from pipelines.findings import Finding
from pipelines.reading.properties import service_model
from pipelines.reading.variables import EXECUTION_VARIABLES

# Step type -> (API operation, the name member the service fills in at run time).
OPERATIONS: Final = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", None),
    "Transform": ("CreateTransformJob", "TransformJobName"),
}
# Step types with no API request of their own.
NO_REQUEST: Final = ("Condition", "Fail")

# A pipeline parameter type (the reader's PARAMETER_TYPES) -> the botocore type of its values.
_BOTOCORE_TYPES: Final = {"String": "string", "Integer": "integer", "Float": "float", "Boolean": "boolean"}
_REPORT_FIELD = re.compile(r"(?:parameter|in) ([A-Za-z0-9_.\[\]]+)")


def _placeholder(type_name: str, shape: Shape | None) -> Any:
    """A value of ``type_name`` that satisfies the shape's minimum length/value."""
    minimum = int(shape.metadata.get("min", 1)) if shape is not None else 1
    if type_name == "string":
        return "x" * max(minimum, 1)
    if type_name in ("integer", "long"):
        return max(minimum, 1)
    if type_name in ("float", "double"):
        return float(max(minimum, 1))
    if type_name == "boolean":
        return True
    if type_name == "timestamp":
        return dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    if type_name == "blob":
        return b"x"
    if isinstance(shape, ListShape):
        return [_placeholder(shape.member.type_name, shape.member) for _ in range(max(minimum, 1))]
    return {}


def _for_expression(expr: Mapping[str, Any], shape: Shape, parameter_types: Mapping[str, str]) -> Any:
    (key,) = expr
    value = expr[key]
    if key == "Get" and isinstance(value, str):
        kind, _, name = value.partition(".")
        declared = None
        if kind == "Parameters":
            declared = parameter_types.get(name)
        elif kind == "Execution" and name in EXECUTION_VARIABLES:
            declared = EXECUTION_VARIABLES[name].value_type
        if declared in _BOTOCORE_TYPES:
            return _placeholder(_BOTOCORE_TYPES[declared], shape)
    if key == "Std:Join":
        return _placeholder("string", shape)  # Join always produces a string
    return _placeholder(shape.type_name, shape)


def substitute(value: Any, shape: Shape, parameter_types: Mapping[str, str]) -> Any:
    """``value`` with every pipeline expression replaced by a typed placeholder."""
    if is_expression(value):
        return _for_expression(value, shape, parameter_types)
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return {
            k: substitute(v, shape.members[k], parameter_types) if k in shape.members else v
            for k, v in value.items()
        }
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [substitute(item, shape.member, parameter_types) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        return {k: substitute(v, shape.value, parameter_types) for k, v in value.items()}
    return value


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct (e.g. \p{...}): the service checks it, we cannot
        return None


def _string_problem(value: str, shape: Shape) -> str | None:
    if shape.enum and value not in shape.enum:
        allowed = list(shape.enum)
        shown = ", ".join(allowed[:6]) + (f", ... ({len(allowed)} values)" if len(allowed) > 6 else "")
        return f"{value!r} is not a value the API accepts here ({shown})"
    pattern = shape.metadata.get("pattern")
    compiled = _pattern(pattern) if pattern else None
    if compiled is not None and not compiled.fullmatch(value):
        return f"{value!r} does not match the API pattern {pattern}"
    return None


def literal_problems(
    value: Any, shape: Shape, defaults: Mapping[str, Any] | None = None, path: str = ""
) -> list[tuple[str, str]]:
    """Enum and pattern violations (botocore checks neither) of literal strings and of the
    defaults of parameters used directly in a field; other expressions are runtime values."""
    defaults = defaults or {}
    if is_expression(value):
        reference = value.get("Get")
        name = reference.removeprefix("Parameters.") if isinstance(reference, str) else None
        default = defaults.get(name) if name and reference.startswith("Parameters.") else None
        if isinstance(default, str) and shape.type_name == "string":
            problem = _string_problem(default, shape)
            return [(path, f"default of parameter {name}: {problem}")] if problem else []
        return []
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        return [
            problem
            for k, v in value.items()
            if k in shape.members
            for problem in literal_problems(v, shape.members[k], defaults, f"{path}.{k}" if path else k)
        ]
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [
            p
            for i, item in enumerate(value)
            for p in literal_problems(item, shape.member, defaults, f"{path}[{i}]")
        ]
    if isinstance(shape, MapShape) and isinstance(value, Mapping):
        return [
            p for k, v in value.items() for p in literal_problems(v, shape.value, defaults, f"{path}.{k}")
        ]
    if shape.type_name != "string" or not isinstance(value, str):
        return []
    problem = _string_problem(value, shape)
    return [(path, problem)] if problem else []


def _fix_for(line: str) -> str:
    if line.startswith("Missing required"):
        return "add the member the API requires"
    if line.startswith("Unknown parameter"):
        return "remove the member or correct its spelling (the API does not accept it)"
    if line.startswith("Invalid type"):
        return "give the member a value of the type the API expects (see 'valid types')"
    return "change the value to one the API accepts"


def validate_step(
    step: Mapping[str, Any], parameter_types: Mapping[str, str], defaults: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Findings (control SHAPE) for one step; Condition/Fail steps have no request of their own."""
    name, kind = str(step.get("Name")), str(step.get("Type"))
    if kind in NO_REQUEST:
        return []
    if kind not in OPERATIONS:
        return [
            Finding(
                name,
                "Type",
                "SHAPE",
                f"step type {kind!r} has no known API request shape",
                "use a known type",
            )
        ]
    operation, job_name = OPERATIONS[kind]
    shape = service_model().operation_model(operation).input_shape
    arguments = step.get("Arguments")
    if not isinstance(arguments, Mapping):
        return [
            Finding(
                name, "Arguments", "SHAPE", "the step has no Arguments object", f"give it {operation} args"
            )
        ]
    request = substitute(dict(arguments), shape, parameter_types)
    if job_name is not None:
        request.setdefault(job_name, _placeholder("string", shape.members[job_name]))
    findings = []
    report = ParamValidator().validate(request, shape)
    if report.has_errors():
        for line in report.generate_report().splitlines():
            match = _REPORT_FIELD.search(line)
            findings.append(
                Finding(
                    name,
                    match.group(1) if match else "Arguments",
                    "SHAPE",
                    f"{operation}: {line}",
                    _fix_for(line),
                )
            )
    for path, problem in literal_problems(dict(arguments), shape, defaults):
        findings.append(
            Finding(name, path, "SHAPE", f"{operation}: {problem}", "use a value the API accepts")
        )
    return findings


def validate_shapes(definition: Mapping[str, Any]) -> list[Finding]:
    parameter_types = {p["Name"]: str(p.get("Type", "String")) for p in definition.get("Parameters", [])}
    defaults = parameter_defaults(definition)
    steps = iter_steps(definition.get("Steps", []))
    return [f for step in steps for f in validate_step(step, parameter_types, defaults)]
