"""A Condition step: its conditions evaluated (ANDed) as SageMaker does; ``Outcome`` picks the branch.

The engine runs the steps of the branch taken and marks the other branch ``Skipped``. Each
condition, its two sides and its result are written to the step's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.pipeline.context import StepResult
from emulators.sagemaker.pipeline.expressions import ExpressionError, Scope


def run_condition(step: Mapping[str, Any], scope: Scope, log_path: Path | None) -> StepResult:
    evaluated = []
    outcome = True
    for spec in (step.get("Arguments") or {}).get("Conditions", []):
        try:
            result = scope.condition(spec)
            shown = {
                "type": spec.get("Type"),
                "left": scope.resolve(spec["LeftValue"]) if "LeftValue" in spec else None,
                "right": scope.resolve(spec["RightValue"]) if "RightValue" in spec else None,
                "result": result,
            }
        except ExpressionError as exc:
            raise StepFailedError(f"ClientError: condition {spec.get('Type')}: {exc}") from None
        evaluated.append(shown)
        outcome = outcome and result
    if log_path:
        with log_path.open("a", encoding="utf-8") as log:
            for item in evaluated:
                log.write(f"{item['type']}: {item['left']!r} vs {item['right']!r} -> {item['result']}\n")
            log.write(f"Outcome: {outcome}\n")
    return StepResult({"Outcome": "True" if outcome else "False"}, {"conditions": evaluated})
