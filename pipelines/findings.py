"""A finding about a pipeline definition: which step, which field, which control, and the fix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

# Controls T1-T6 (docs/controls.md) and rookery's structural checks.
CONTROLS: Final = {
    "T1": "runs in the project VPC (the stage's subnets and security groups)",
    "T2": "network isolation (the job needs no network)",
    "T3": "inter-container traffic encryption",
    "T4": "KMS keys for storage volumes and outputs",
    "T5": "spot training has a checkpoint URI and a bounded wait",
    "T6": "images come from the project's private ECR repository",
    "SHAPE": "arguments match the SageMaker API request shape (botocore)",
    "REF": "expressions name parameters, execution variables, step properties and property files that "
    "exist, with SageMaker's functions; the steps form a DAG",
}

# How a definition acknowledges an exception, in the step's Description (a free-text field the
# service keeps, shown in Studio next to the step):  "Acknowledged T6: <reason>".
ACKNOWLEDGEMENT: Final = re.compile(r"Acknowledged (T[1-6]): (.{20,}?)(?:\n|$)")


@dataclass(frozen=True)
class Finding:
    step: str
    field: str
    control: str
    message: str
    fix: str
    acknowledged: str | None = None  # the written reason, when the step acknowledges the control

    @property
    def blocking(self) -> bool:
        return self.acknowledged is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def acknowledgements(step: Mapping[str, Any]) -> dict[str, str]:
    """Control id -> written reason, from ``Acknowledged T6: <reason>`` lines in the step's Description."""
    description = step.get("Description")
    if not isinstance(description, str):
        return {}
    return {m.group(1): m.group(2).strip() for m in ACKNOWLEDGEMENT.finditer(description)}


def acknowledgement_line(control: str, reason: str) -> str:
    return f"Acknowledged {control}: {reason}"
