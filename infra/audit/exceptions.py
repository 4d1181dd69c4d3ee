"""What makes an acknowledgment (an accepted finding) acceptable: the ``Pack::Rule`` form and a real reason.

Pure functions: ``acknowledge()`` applies them while the app is built, and the gate applies
them again to the synthesized assembly, so an acknowledgment written around the helper is
still caught.
"""

from __future__ import annotations

import re
from typing import Final

from infra.audit.guard import GUARD_PACK

# Packs registered by app.py; an acknowledgment must name one of them. cdk-nag's and rookery's rules
# are named ``<pack>-<rule>``; the Control Tower guard rules by their own snake-case names.
PACKS: Final = ("AwsSolutions", "NIST.800.53.R5", "Rookery", GUARD_PACK)
MIN_REASON_LENGTH: Final = 40
# Reasons that say nothing about the resource.
_EMPTY_REASONS: Final = frozenset(
    {
        "ok",
        "n/a",
        "na",
        "none",
        "todo",
        "tbd",
        "suppressed",
        "acknowledged",
        "false positive",
        "not needed",
        "test",
    }
)
_ID: Final = re.compile(
    r"^(?:(?P<pack>[A-Za-z0-9.]+)::(?P<rule>(?P=pack)-[A-Za-z0-9]+)(?P<finding>\[.+\])?"
    rf"|(?P<guard>{re.escape(GUARD_PACK)})::[a-z0-9]+(?:_[a-z0-9]+)*)$"
)


def acknowledgment_problems(rule_id: str, reason: str | None) -> list[str]:
    """Why this acknowledgment is unacceptable (empty when it is fine)."""
    problems = []
    match = _ID.match(rule_id)
    if match is None:
        problems.append(
            f"id {rule_id!r} is not in 'Pack::Rule' form "
            "(e.g. 'AwsSolutions::AwsSolutions-IAM5[Resource::*]'); "
            "without the pack prefix the finding vanishes from the validation report"
        )
    elif match["guard"] is None and match["pack"] not in PACKS:
        problems.append(f"id {rule_id!r} names pack {match['pack']!r}; registered packs are {list(PACKS)}")
    text = (reason or "").strip()
    if not text:
        problems.append(f"{rule_id}: the reason is empty; say why this resource may break this rule")
    elif text.lower().rstrip(".") in _EMPTY_REASONS or len(text) < MIN_REASON_LENGTH:
        problems.append(
            f"{rule_id}: reason {text!r} is too thin (at least {MIN_REASON_LENGTH} characters, "
            "specific to the "
            "resource); say why this resource may break this rule"
        )
    return problems
