"""Walking a rendered pipeline definition (the JSON dict): its steps, its nodes and their paths."""

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


def steps_by_name(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(step.get("Name")): step for step in iter_steps(definition.get("Steps", []))}


def parameter_defaults(definition: Mapping[str, Any]) -> dict[str, Any]:
    return {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}


def field_path(*parts: str | int) -> str:
    """``("A", "B", 0, "C")`` -> ``A.B[0].C``, the way findings and refusals name a field."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


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
