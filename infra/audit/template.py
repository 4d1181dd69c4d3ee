"""Reading synthesized CloudFormation templates: resources by type, policy statements, intrinsics as text.

Pure functions over template JSON (no CDK), shared by the rule pack (``infra.audit.rules``) and
the reviewer's facts (``infra.audit.facts``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Template = Mapping[str, Any]


def resources(template: Template, *types: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, resource) of every resource of the given types (all resources without types)."""
    for logical_id, resource in template.get("Resources", {}).items():
        if not types or resource.get("Type") in types:
            yield logical_id, resource


def props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def target(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at (None for anything else)."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return str(att[0] if isinstance(att, list) else att.split(".")[0])
    return None


def statements(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def is_any_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def condition_keys(statement: Mapping[str, Any]) -> set[str]:
    """Every condition key of a statement, lower-cased (IAM compares keys case-insensitively)."""
    return {key.lower() for block in (statement.get("Condition") or {}).values() for key in block}


def flatten(value: Any) -> str:
    """A readable string for a (possibly intrinsic) value: literals stay, references become <Id>."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(flatten(p) for p in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            return str(sub[0] if isinstance(sub, list) else sub)
        ref = target(value)
        if ref is not None:
            return f"<{ref}>"
    if isinstance(value, list):
        return ",".join(flatten(v) for v in value)
    return str(value)
