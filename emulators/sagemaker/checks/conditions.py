"""A Condition step's conditions: each of a type the engine evaluates, with the operands it needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.sagemaker.checks.fields import StepFields
from emulators.sagemaker.pipeline.expressions import CONDITION_TYPES


def check_conditions(fields: StepFields) -> None:
    if fields.kind != "Condition":
        return
    conditions = fields.args.get("Conditions")
    if not isinstance(conditions, list) or not conditions:
        raise fields.refuse("Arguments.Conditions", "a Condition step needs a list of conditions")
    for i, spec in enumerate(conditions):
        _condition(fields, spec, f"Arguments.Conditions[{i}]")


def _condition(fields: StepFields, spec: Any, field: str) -> None:
    kind = spec.get("Type") if isinstance(spec, Mapping) else None
    if kind not in CONDITION_TYPES:
        raise fields.refuse(
            f"{field}.Type", f"{kind!r} is not a condition type; use one of {list(CONDITION_TYPES)}"
        )
    if kind == "Not":
        _condition(fields, spec.get("Expression"), f"{field}.Expression")
    elif kind == "Or":
        for i, inner in enumerate(spec.get("Conditions", [])):
            _condition(fields, inner, f"{field}.Conditions[{i}]")
    elif kind == "In":
        if "QueryValue" not in spec or not isinstance(spec.get("Values"), list):
            raise fields.refuse(field, "an In condition needs QueryValue and a list of Values")
    elif "LeftValue" not in spec or "RightValue" not in spec:
        raise fields.refuse(field, f"a {kind} condition needs LeftValue and RightValue")
