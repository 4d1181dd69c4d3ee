"""A problem the reader finds in a definition: where it is (step and field), what is wrong, the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The "step" of a problem with the definition's top level (its parameters, its own keys).
PIPELINE: Final = "(pipeline)"


@dataclass(frozen=True)
class Problem:
    """Neutral: ``rookery pipeline validate`` reports it as a finding, the local engine refuses it."""

    step: str  # the step's name, or PIPELINE
    field: str  # where in the step (``Arguments.ResourceConfig.InstanceType``, ``DependsOn``)
    what: str  # what is wrong, naming the value
    fix: str  # what to write instead

    @property
    def text(self) -> str:
        """What is wrong, then the fix: one line for a refusal."""
        return f"{self.what}; {self.fix}"
