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


def is_expression(value: object) -> bool:
    """A pipeline expression: ``{"Get": ...}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}``."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    (key,) = value
    return key == "Get" or str(key).startswith("Std:")


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
