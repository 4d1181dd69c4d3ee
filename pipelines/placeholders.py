"""Where each resource value lands in a rendered definition, for stacks that substitute tokens.

The ML stack renders the definition with unique placeholder resources, then swaps each
placeholder for a CloudFormation token. ``placeholder_locations`` says where each value sits
(to test "the embedded definition equals the builder's output apart from ARNs");
``split_on_placeholders`` cuts the JSON text into literal pieces and resource field names,
ready for ``Fn::Join`` / ``Fn::Sub``. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.definition import walk
from pipelines.settings import PipelineResources


class PlaceholderError(ValueError):
    """Placeholder values overlap, so substitution would be ambiguous; the message names them."""


def _checked(resources: PipelineResources) -> dict[str, str]:
    values = resources.values()
    for a, va in values.items():
        for b, vb in values.items():
            if a != b and va in vb:
                raise PlaceholderError(
                    f"placeholder {a} = {va!r} occurs inside {b} = {vb!r}; give every resource a distinct, "
                    "non-overlapping placeholder value"
                )
    return values


def placeholder_locations(
    definition: Mapping[str, Any], resources: PipelineResources
) -> dict[str, list[str]]:
    """Resource field (``role_arn``, ``subnet_ids[0]``, ...) -> JSON paths of strings containing it."""
    values = _checked(resources)
    found: dict[str, list[str]] = {field: [] for field in values}
    for path, text in walk(definition):
        if not isinstance(text, str):
            continue
        for field, value in values.items():
            if value in text:
                found[field].append(path)
    return found


def split_on_placeholders(text: str, resources: PipelineResources) -> list[str | tuple[str]]:
    """``text`` as literal pieces and ``(field,)`` markers where a resource value stood.

    ``"".join(piece if isinstance(piece, str) else values[piece[0]] ...)`` gives ``text`` back.
    """
    values = _checked(resources)
    pieces: list[str | tuple[str]] = []
    literal_start = i = 0
    # Longest first, so a value is never cut short by a shorter one that starts the same way.
    ordered = sorted(values.items(), key=lambda item: -len(item[1]))
    while i < len(text):
        hit = next((field for field, value in ordered if text.startswith(value, i)), None)
        if hit is None:
            i += 1
            continue
        if literal_start < i:
            pieces.append(text[literal_start:i])
        pieces.append((hit,))
        i += len(values[hit])
        literal_start = i
    if literal_start < len(text):
        pieces.append(text[literal_start:])
    return pieces
