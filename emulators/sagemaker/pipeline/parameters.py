"""Execution parameters: the definition's defaults with the caller's overrides, typed as declared.

Overrides go through ``pipelines.parameters.parse_overrides`` (the same checks as
``rookery pipeline start --param``): unknown names, wrong types and values the jobs would reject
raise ``ParameterError`` naming the parameter and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.parameters import ParameterError, declared, parse_overrides


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _typed(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "Integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "Float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
    except (TypeError, ValueError):
        raise ParameterError(
            f"parameter {name}: {value!r} is not a{'n' if kind == 'Integer' else ''} {kind}"
        ) from None
    return str(value)


def resolve_parameters(
    definition: Mapping[str, Any], overrides: Mapping[str, str | int | float | bool] | None
) -> dict[str, Any]:
    """Every declared parameter's value for one execution, typed (Integer -> int, Float -> float ...)."""
    known = declared(definition)
    given = dict(overrides or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParameterError(
            f"--param {unknown[0]}: the pipeline has no parameter {unknown[0]!r}; "
            f"known: {', '.join(sorted(known))}"
        )
    wire = parse_overrides(definition, [f"{k}={_wire(v)}" for k, v in given.items()])
    values: dict[str, Any] = {}
    for name, spec in known.items():
        kind = str(spec.get("Type", "String"))
        if name in wire:
            raw: Any = wire[name]
        elif "DefaultValue" in spec and spec["DefaultValue"] is not None:
            raw = spec["DefaultValue"]
        else:
            raise ParameterError(f"parameter {name} has no default value; pass it (--param {name}=VALUE)")
        value = _typed(name, kind, raw)
        allowed = spec.get("EnumValues")
        if allowed and value not in allowed:
            raise ParameterError(
                f"--param {name}={value}: {name} must be one of {', '.join(map(str, allowed))}"
            )
        values[name] = value
    return values
