"""What a finished local run tells its user after the step table: the data report's warnings, the
test AUC, the threshold and its operating point, the gate's verdict, the registered package and the
next steps with the right ``--stage``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from emulators.sagemaker.models import Execution, StepRecord
from pipelines import steps
from pipelines.contract import EVALUATION_OUTPUT
from rookery_contracts import evaluation as layout

DATA_REPORT_OUTPUT = "report"


def _record(execution: Execution, name: str) -> StepRecord | None:
    return next((s for s in execution.steps if s.name == name and s.status == "Succeeded"), None)


def _output(home: LocalHome, record: StepRecord, name: str) -> Path | None:
    for output in record.properties.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if output.get("OutputName") == name:
            return LocalS3(home).path(str(output["S3Output"]["S3Uri"]))
    return None


def _json(folder: Path | None, pattern: str) -> dict[str, Any] | None:
    found = sorted(folder.glob(pattern)) if folder is not None and folder.is_dir() else []
    if len(found) != 1:
        return None
    loaded = json.loads(found[0].read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def data_warnings(home: LocalHome, execution: Execution) -> list[str]:
    """The Preprocess job's warnings (invalid values imputed as missing, a strongly unbalanced target)."""
    record = _record(execution, steps.PREPROCESS)
    report = _json(_output(home, record, DATA_REPORT_OUTPUT), "*.json") if record else None
    if report is None:
        return []
    warnings = [str(w) for w in (report.get("invalid_values") or {}).get("warnings") or []]
    balance = report.get("class_balance") or {}
    if balance.get("strongly_unbalanced"):
        warnings.append(f"strongly unbalanced target: {balance.get('advice')}")
    return warnings


def evaluation_of(home: LocalHome, execution: Execution) -> dict[str, Any] | None:
    record = _record(execution, steps.EVALUATE)
    return _json(_output(home, record, EVALUATION_OUTPUT), layout.EVALUATION_FILE) if record else None


def result_lines(home: LocalHome, execution: Execution, stage: str) -> list[str]:
    """The result in a few lines; empty when the run never got to Evaluate."""
    lines = [f"data: WARNING {w}" for w in data_warnings(home, execution)]
    document = evaluation_of(home, execution)
    if document is None:
        return lines
    auc = float(layout.value_at(document, layout.AUC_PATH))
    threshold = float(layout.value_at(document, layout.THRESHOLD_PATH))
    point = document[layout.OPERATING_POINT_KEY]
    metrics = document[layout.METRICS_KEY]
    gate = _record(execution, steps.GATE)
    conditions = gate.metrics.get("conditions", []) if gate else []
    auc_bar = next((c["right"] for c in conditions if c.get("type") == "GreaterThanOrEqualTo"), None)
    lines.append(f"test AUC {auc:.4f}" + ("" if auc_bar is None else f" (bar {auc_bar:g})"))
    operating = (
        f"threshold {threshold:.4f} ({layout.value_at(document, layout.THRESHOLD_RULE_PATH)}): on test "
        f"sensitivity {metrics['recall']['value']:.3f}, specificity {metrics['specificity']['value']:.3f}, "
        f"precision {metrics['precision']['value']:.3f}"
    )
    if point.get("bar") is not None:
        operating += (
            f"; {point['metric']} {point['value']:.3f} vs bar {point['bar']:g}, "
            f"{point['confidence']:.0%} upper bound {point['upper_bound']:.3f} -> "
            f"{'met' if point['met'] else 'NOT met'}"
        )
    lines.append(operating)
    outcome = gate.properties.get("Outcome") if gate else None
    verdict = {"True": "passed", "False": "FAILED"}.get(str(outcome), "not reached")
    lines.append(f"gate: {verdict}")
    register = _record(execution, steps.REGISTER)
    if register is not None:
        props = register.properties
        ref = f"{props.get('ModelPackageGroupName')}/{props.get('ModelPackageVersion')}"
        status = props.get("ModelApprovalStatus")
        lines.append(f"registered {ref} ({status})")
        lines.append(
            f"next: `rookery local approve {ref}`, then `rookery local serve --stage {stage}`"
            if status != "Approved"
            else f"next: `rookery local serve --stage {stage}`"
        )
    return lines
