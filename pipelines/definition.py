"""Reading a rendered pipeline definition (the JSON dict): steps, expressions, references."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


def iter_steps(steps: Iterable[Any]) -> Iterator[Any]:
    """Every step, including the ones nested in a condition's if/else branches."""
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            args = step.get("Arguments", {})
            yield from iter_steps(args.get("IfSteps", []))
            yield from iter_steps(args.get("ElseSteps", []))


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every node of a JSON value with its path (``Arguments.AppSpecification.ContainerArguments[1]``)."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")


def is_expression(value: object) -> bool:
    """A pipeline expression: ``{"Get": ...}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}``."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    (key,) = value
    return key == "Get" or str(key).startswith("Std:")


def references(value: Any) -> Iterator[str]:
    """Every ``{"Get": "..."}`` target inside ``value`` (parameters, execution variables, steps)."""
    if isinstance(value, Mapping):
        if isinstance(value.get("Get"), str) and len(value) == 1:
            yield value["Get"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def own_arguments(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step's arguments without the steps a condition nests in its branches."""
    return {k: v for k, v in (step.get("Arguments") or {}).items() if k not in ("IfSteps", "ElseSteps")}


def dependencies(definition: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Step name -> the steps it waits for: ``DependsOn``, step properties and property files it
    reads, and the condition whose branch holds it. The DAG the service (and the local engine) runs."""
    names = set(steps_by_name(definition))
    graph: dict[str, frozenset[str]] = {}

    def visit(steps: Iterable[Mapping[str, Any]], parent: str | None) -> None:
        for step in steps:
            name = str(step.get("Name"))
            needs = {str(d) for d in step.get("DependsOn", []) or []}
            for target in references(own_arguments(step)):
                head, _, rest = target.partition(".")
                step_name = rest.split(".", 1)[0].split("[", 1)[0]
                if head == "Steps" and step_name in names:
                    needs.add(step_name)
            if parent is not None:
                needs.add(parent)
            graph[name] = frozenset(needs - {name})
            if step.get("Type") == "Condition":
                args = step.get("Arguments", {})
                visit(args.get("IfSteps", []), name)
                visit(args.get("ElseSteps", []), name)

    visit(definition.get("Steps", []), None)
    return graph


def steps_by_name(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(step.get("Name")): step for step in iter_steps(definition.get("Steps", []))}


def parameter_defaults(definition: Mapping[str, Any]) -> dict[str, Any]:
    return {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}


def dig(value: Any, *path: str | int) -> Any:
    """``value[path[0]][path[1]]...`` or None when any part is missing."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
        elif not isinstance(value, Mapping):
            return None
        value = value[part] if isinstance(part, int) else value.get(part)
    return value
