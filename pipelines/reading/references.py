"""Every expression in a step's arguments, read as SageMaker reads it.

A ``Get`` names a declared parameter, an execution variable, or a property another step exposes
(a path in its Describe* response shape); a property file is read with ``Std:JsonGet`` from a step
that declares it; the only functions are SageMaker's, each in its shape.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from pipelines.definition import iter_steps, own_arguments, steps_by_name
from pipelines.reading.paths import split_step_reference
from pipelines.reading.problem import Problem
from pipelines.reading.properties import CONDITION_PROPERTIES, PROPERTY_SHAPES, property_problem
from pipelines.reading.variables import EXECUTION_VARIABLES, declared_parameters

# SageMaker's pipeline functions (the SDK writes Join as Std:Join and JsonGet as Std:JsonGet).
FUNCTIONS: Final = ("Get", "Std:Join", "Std:JsonGet")
# Where a Std:JsonGet names its property file: that Get is read with the Std:JsonGet around it.
_JSON_GET_SOURCE: Final = ".Std:JsonGet.PropertyFile"
_PROPERTY_FILE_GET: Final = "{'Get': 'Steps.<step>.PropertyFiles.<name>'}"
_JSON_GET: Final = f"{{'Std:JsonGet': {{'PropertyFile': {_PROPERTY_FILE_GET}, 'Path': '<json path>'}}}}"


def walk_expressions(value: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every expression (outermost first) and every unknown ``Std:*`` function, with its JSON path."""
    if isinstance(value, Mapping):
        if len(value) == 1:
            (key,) = value
            if key in FUNCTIONS or str(key).startswith("Std:"):
                yield path, value
        for key, item in value.items():
            yield from walk_expressions(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_expressions(item, f"{path}[{i}]")


class _Reader:
    """One step's expressions against what the definition declares."""

    def __init__(self, parameters: Sequence[str], steps: Mapping[str, Mapping[str, Any]], name: str) -> None:
        self.parameters = parameters
        self.steps = steps
        self.name = name

    def problem(self, field: str, what: str, fix: str) -> Problem:
        return Problem(self.name, field, what, fix)

    def expression(self, path: str, expression: Mapping[str, Any]) -> Problem | None:
        (key,) = expression
        body = expression[key]
        if key not in FUNCTIONS:
            return self.problem(
                path,
                f"function {key!r} is not supported: SageMaker pipelines have {', '.join(FUNCTIONS)}",
                "write the value with these functions, or compute it in a step",
            )
        if key == "Std:Join":
            if isinstance(body, Mapping) and isinstance(body.get("Values"), list):
                return None
            return self.problem(
                path,
                "Std:Join needs {'On': str, 'Values': [...]}",
                "write {'Std:Join': {'On': '/', 'Values': [...]}}",
            )
        if key == "Std:JsonGet":
            return self.json_get(path, body)
        if path.endswith(_JSON_GET_SOURCE):
            return None  # read with the Std:JsonGet around it
        if not isinstance(body, str):
            return self.problem(
                path,
                f"Get needs a string reference, not {body!r}",
                "write Parameters.<name>, Execution.<variable> or Steps.<step>.<property>",
            )
        return self.get(path, body)

    def get(self, path: str, reference: str) -> Problem | None:
        kind, _, rest = reference.partition(".")
        if kind == "Parameters":
            if rest in self.parameters:
                return None
            return self.problem(
                path,
                f"refers to undeclared parameter {rest!r}",
                f"the definition has no parameter {rest!r}; declare it, or use one it declares: "
                f"{', '.join(sorted(self.parameters)) or 'none'}",
            )
        if kind == "Execution":
            if rest in EXECUTION_VARIABLES:
                return None
            return self.problem(
                path,
                f"refers to unknown execution variable {rest!r}",
                f"use one of SageMaker's execution variables: {', '.join(EXECUTION_VARIABLES)}",
            )
        if kind == "Steps":
            return self.step_property(path, reference)
        return self.problem(
            path,
            f"refers to {reference!r}: {kind!r} is an unknown kind of reference",
            "refer to Parameters.<name>, Execution.<variable> or Steps.<step>.<property>",
        )

    def target(self, path: str, reference: str) -> tuple[Mapping[str, Any], list[Any]] | Problem:
        """The step a ``Steps.<step>...`` reference names and the path after it, or the problem."""
        try:
            target, parts = split_step_reference(reference)
        except ValueError as exc:
            return self.problem(path, str(exc), "write Steps.<step>.<property>, as the SDK does")
        if target not in self.steps:
            return self.problem(
                path,
                f"refers to unknown step in {reference!r}",
                f"there is no step {target!r}; refer to one of the definition's steps: "
                f"{', '.join(self.steps)}",
            )
        if target == self.name:
            return self.problem(
                path,
                f"{reference!r}: a step cannot read its own properties",
                "read them in a step that runs after it",
            )
        return self.steps[target], parts

    def step_property(self, path: str, reference: str) -> Problem | None:
        found = self.target(path, reference)
        if isinstance(found, Problem):
            return found
        step, parts = found
        if parts[:1] == ["PropertyFiles"]:
            undeclared = self.property_file(path, reference, step, parts)
            return undeclared or self.problem(
                path,
                f"reads property file {reference!r} with a Get",
                f"read a property file with Std:JsonGet ({_JSON_GET})",
            )
        step_type = str(step.get("Type"))
        problem = property_problem(step_type, parts)
        if problem is None:
            return None
        if step_type == "Condition":
            fix = f"read {', '.join(CONDITION_PROPERTIES)}"
        elif step_type in PROPERTY_SHAPES:
            fix = f"name a property a {step_type} step has (a path in its Describe* response)"
        else:
            fix = "refer to a step that exposes properties"
        return self.problem(
            path, f"refers to an unknown property of {step_type} step {step.get('Name')!r} ({problem})", fix
        )

    def property_file(
        self, field: str, reference: str, step: Mapping[str, Any], parts: Sequence[Any]
    ) -> Problem | None:
        """None when ``parts`` is ``PropertyFiles.<name>`` of a file ``step`` declares."""
        if len(parts) != 2 or parts[0] != "PropertyFiles" or not isinstance(parts[1], str):
            return self.problem(
                field,
                f"{reference!r} is not Steps.<step>.PropertyFiles.<name>",
                f"must be {_PROPERTY_FILE_GET}",
            )
        wanted = parts[1]
        declared = sorted(str(f.get("PropertyFileName")) for f in step.get("PropertyFiles", []) or [])
        if wanted in declared:
            return None
        owner = step.get("Name")
        return self.problem(
            field,
            f"refers to property file {wanted!r}, which step {owner!r} does not declare",
            f"step {owner!r} declares no property file {wanted!r}; use one it declares ({declared}), "
            "or declare it in the step's PropertyFiles",
        )

    def json_get(self, path: str, body: Any) -> Problem | None:
        if not isinstance(body, Mapping) or not isinstance(body.get("Path"), str):
            return self.problem(path, "Std:JsonGet needs a Path string", f"write {_JSON_GET}")
        if ("PropertyFile" in body) == ("S3Uri" in body):
            return self.problem(
                path, "Std:JsonGet reads either a PropertyFile or an S3Uri, exactly one", f"write {_JSON_GET}"
            )
        if "S3Uri" in body:
            return None  # a JSON file a step wrote to S3 (the SDK's @step functions)
        field = f"{path}.PropertyFile"
        source = body["PropertyFile"]
        reference = source.get("Get") if isinstance(source, Mapping) and len(source) == 1 else None
        if not isinstance(reference, str):
            return self.problem(field, f"{source!r} is not a property file", f"must be {_PROPERTY_FILE_GET}")
        found = self.target(field, reference)
        if isinstance(found, Problem):
            return found
        step, parts = found
        return self.property_file(field, reference, step, parts)


def reference_problems(definition: Mapping[str, Any]) -> list[Problem]:
    """Every expression of every step (the branches of a condition included), in step order."""
    parameters = declared_parameters(definition)
    steps = steps_by_name(definition)
    problems = []
    for step in iter_steps(definition.get("Steps") or []):
        reader = _Reader(parameters, steps, str(step.get("Name")))
        for path, expression in walk_expressions(own_arguments(step), "Arguments"):
            problem = reader.expression(path, expression)
            if problem is not None:
                problems.append(problem)
    return problems
