"""Pipeline expressions as SageMaker evaluates them: ``Get``, ``Std:Join``, ``Std:JsonGet``, conditions.

Pure functions over a :class:`Scope` that answers parameters, execution variables, step
properties and property files. Property paths are read by ``pipelines.reading.paths``
(``Steps.Train.FinalMetricDataList['validation:auc'].Value``); a ``['name']`` index on a list
picks the item whose ``...Name`` member equals ``name`` (OutputName, MetricName, ChannelName), as
the service does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipelines.reading.paths import Token, show, split_step_reference, tokens
from pipelines.reading.references import FUNCTIONS

CONDITION_TYPES: Final = (
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "In",
    "Not",
    "Or",
)


class ExpressionError(ValueError):
    """An expression cannot be evaluated (missing value, wrong type); the message says which and why."""


def lookup(value: Any, path: list[Token], where: str) -> Any:
    """Follow ``path`` into SageMaker-shaped ``value``; ExpressionError naming the first missing part."""
    done: list[Token] = []
    for token in path:
        done.append(token)
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                raise ExpressionError(f"{where}: {show(done)} does not exist")
            value = value[token]
        elif isinstance(token, tuple):
            key = token[0]
            if isinstance(value, list):
                value = next((item for item in value if _named(item, key)), _MISSING)
            elif isinstance(value, Mapping):
                value = value.get(key, _MISSING)
            else:
                value = _MISSING
            if value is _MISSING:
                raise ExpressionError(f"{where}: {show(done)} does not exist")
        else:
            if not isinstance(value, Mapping) or token not in value:
                raise ExpressionError(f"{where}: {show(done)} does not exist")
            value = value[token]
    return value


_MISSING: Final = object()


def _named(item: Any, key: str) -> bool:
    return isinstance(item, Mapping) and any(
        k.endswith("Name") and v == key for k, v in item.items() if isinstance(k, str)
    )


def is_expression(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in FUNCTIONS


def to_text(value: Any) -> str:
    """How ``Std:Join`` writes a value: numbers as numbers, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Scope:
    """What expressions may read while one step is being prepared."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]
    step_properties: Callable[[str], Mapping[str, Any]]
    property_file: Callable[[str, str], Any]

    def get(self, reference: str) -> Any:
        kind, _, rest = reference.partition(".")
        if kind == "Parameters":
            if rest not in self.parameters:
                raise ExpressionError(f"Get {reference}: no such parameter")
            return self.parameters[rest]
        if kind == "Execution":
            if rest not in self.execution:
                raise ExpressionError(f"Get {reference}: execution variable not available here")
            return self.execution[rest]
        if kind == "Steps":
            step, path = split_step_reference(reference)
            if path[:1] == ["PropertyFiles"]:
                raise ExpressionError(f"Get {reference}: a property file is read with Std:JsonGet")
            return lookup(self.step_properties(step), path, f"Get {reference}")
        raise ExpressionError(f"Get {reference}: unknown kind of reference {kind!r}")

    def json_get(self, spec: Mapping[str, Any]) -> Any:
        path = spec.get("Path")
        if not isinstance(path, str):
            raise ExpressionError("Std:JsonGet needs a Path string")
        source = spec.get("PropertyFile")
        if isinstance(source, Mapping) and isinstance(source.get("Get"), str):
            step, parts = split_step_reference(source["Get"])
            if len(parts) != 2 or parts[0] != "PropertyFiles" or not isinstance(parts[1], str):
                raise ExpressionError(
                    f"Std:JsonGet PropertyFile {source['Get']!r} is not Steps.X.PropertyFiles.Y"
                )
            document = self.property_file(step, parts[1])
            where = f"Std:JsonGet {parts[1]} of step {step}, Path {path!r}"
        elif "S3Uri" in spec:
            raise ExpressionError("Std:JsonGet with S3Uri is refused up front")  # never reached after check
        else:
            raise ExpressionError("Std:JsonGet needs a PropertyFile (Get Steps.X.PropertyFiles.Name)")
        json_path = path.removeprefix("$.").removeprefix("$")
        try:
            parts_in_file = tokens(json_path)
        except ValueError as exc:
            raise ExpressionError(f"{where}: {exc}") from None
        return lookup(document, parts_in_file, where)

    def resolve(self, value: Any) -> Any:
        """``value`` with every expression replaced by its value (plain JSON in, plain JSON out)."""
        if isinstance(value, Mapping):
            if is_expression(value):
                (key,) = value
                body = value[key]
                if key == "Get":
                    return self.get(str(body))
                if key == "Std:Join":
                    on = self.resolve(body.get("On", ""))
                    return str(on).join(to_text(self.resolve(v)) for v in body.get("Values", []))
                return self.json_get(body)
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def condition(self, spec: Mapping[str, Any]) -> bool:
        """One condition, as the Condition step evaluates it."""
        kind = spec.get("Type")
        if kind == "Not":
            return not self.condition(spec["Expression"])
        if kind == "Or":
            return any(self.condition(c) for c in spec.get("Conditions", []))
        if kind == "In":
            query = self.resolve(spec.get("QueryValue"))
            return any(_equal(query, self.resolve(v)) for v in spec.get("Values", []))
        left, right = self.resolve(spec.get("LeftValue")), self.resolve(spec.get("RightValue"))
        if kind == "Equals":
            return _equal(left, right)
        a, b = _number(left, kind, "LeftValue"), _number(right, kind, "RightValue")
        if kind == "GreaterThan":
            return a > b
        if kind == "GreaterThanOrEqualTo":
            return a >= b
        if kind == "LessThan":
            return a < b
        if kind == "LessThanOrEqualTo":
            return a <= b
        raise ExpressionError(f"unknown condition type {kind!r}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    if is_number(left) and is_number(right):
        return float(left) == float(right)  # 1 == 1.0, as the service compares numbers
    if is_number(left) != is_number(right):
        return False  # a number never equals a string or boolean
    return bool(left == right)


def _number(value: Any, kind: object, side: str) -> float:
    if not is_number(value):
        raise ExpressionError(
            f"condition {kind} compares numbers, but its {side} is {value!r} ({type(value).__name__}); "
            "point it at a numeric parameter or a numeric JSON value"
        )
    return float(value)
