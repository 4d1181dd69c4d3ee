"""The demo's HTML report: one self-contained file (plots embedded as data URIs, no external assets).

``ReportData`` holds what the demo found, phase by phase (a phase that did not run is None);
the pure helpers here turn the jobs' own files (``data_report.json``, ``evaluation.json``, the
evaluation PNGs) into table rows, and ``render_report`` fills ``templates/report.html.j2``
(Jinja2, autoescaped, strict about undefined names).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jinja2

from emulators.firehose import Delivery
from infra.audit.run import AuditResult
from rookery.demo.scoring import Scoring
from rookery_contracts.evaluation import (
    AUC_PATH,
    CONFUSION_MATRIX_KEY,
    DATASET_KEY,
    EVALUATION_FILE,
    METRICS_KEY,
    OPERATING_POINT_BAR_PATH,
    OPERATING_POINT_MET_PATH,
    OPERATING_POINT_METRIC_PATH,
    OPERATING_POINT_VALUE_PATH,
    value_at,
)

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# (key in evaluation.json's METRICS_KEY section, label, what it means)
METRICS: Final = (
    ("accuracy", "Accuracy", "share of test rows classified correctly"),
    ("precision", "Precision", "of the rows predicted positive, the share that are"),
    ("recall", "Recall (sensitivity)", "of the positive rows, the share found"),
    ("specificity", "Specificity", "of the negative rows, the share recognised"),
    ("f1", "F1", "harmonic mean of precision and recall"),
    ("auc", "ROC AUC", "ranking quality over every threshold (0.5 = chance)"),
    ("pr_auc", "PR AUC", "average precision over every threshold"),
)
_OPERATING_METRIC_LABEL: Final = {"recall": "recall (sensitivity)", "specificity": "specificity", "f1": "F1"}


class ReportError(ValueError):
    """An artifact the report needs is missing or unreadable; the message names the file."""


@dataclass(frozen=True)
class Plot:
    title: str
    alt: str
    data_uri: str
    source: str


def embed_png(path: Path, *, title: str, alt: str) -> Plot:
    """The PNG at ``path`` as a data URI (checked to be a PNG, so the browser can render it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(
            f"plot {path} cannot be read ({exc.strerror}); did the Evaluate step run?"
        ) from None
    if not data.startswith(PNG_SIGNATURE):
        raise ReportError(f"plot {path} is not a PNG file; Evaluate writes PNGs")
    return Plot(title, alt, "data:image/png;base64," + base64.b64encode(data).decode("ascii"), str(path))


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    meaning: str
    value: float
    deviation: float | None
    baseline: float | None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def metric_rows(evaluation: Mapping[str, Any]) -> list[MetricRow]:
    """The test-split metrics of ``evaluation.json`` with their deviation and best-constant baseline."""
    metrics = value_at(evaluation, METRICS_KEY, None)
    if not isinstance(metrics, Mapping):
        raise ReportError(f"{EVALUATION_FILE} has no {METRICS_KEY}; is it Evaluate's output?")
    rows = []
    for key, label, meaning in METRICS:
        if key not in metrics:
            continue
        entry = metrics[key]
        baseline = metrics.get(f"{key}_best_constant_classifier", {})
        value = _number(entry.get("value"))
        if value is None:
            raise ReportError(f"{EVALUATION_FILE}: {key}.value = {entry.get('value')!r} is not a number")
        rows.append(
            MetricRow(
                key=key,
                label=label,
                meaning=meaning,
                value=value,
                deviation=_number(entry.get("standard_deviation")),
                baseline=_number(baseline.get("value")) if isinstance(baseline, Mapping) else None,
            )
        )
    if not rows:
        raise ReportError(f"{EVALUATION_FILE} holds none of the metrics the report shows")
    return rows


@dataclass(frozen=True)
class Confusion:
    positive: str
    negative: str
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def total(self) -> int:
        return self.true_positives + self.false_positives + self.true_negatives + self.false_negatives


def confusion(evaluation: Mapping[str, Any]) -> Confusion:
    """Actual -> predicted counts (``"1"`` = the positive class), named with the dataset's classes."""
    matrix = value_at(evaluation, f"{METRICS_KEY}.{CONFUSION_MATRIX_KEY}")
    dataset = evaluation.get(DATASET_KEY, {})
    return Confusion(
        positive=str(dataset.get("positive_class", "positive")),
        negative=str(dataset.get("negative_class", "negative")),
        true_positives=int(matrix["1"]["1"]),
        false_positives=int(matrix["0"]["1"]),
        true_negatives=int(matrix["0"]["0"]),
        false_negatives=int(matrix["1"]["0"]),
    )


@dataclass(frozen=True)
class GateCheck:
    check: str
    value: float | None
    bar: str
    met: bool


@dataclass(frozen=True)
class Gate:
    """The pipeline's Gate step: its checks (from evaluation.json) and the branch the execution took."""

    passed: bool | None  # None: the Gate step did not finish
    checks: tuple[GateCheck, ...]
    message: str | None  # the Fail step's message when the gate failed


def gate_checks(evaluation: Mapping[str, Any], auc_threshold: float) -> tuple[GateCheck, ...]:
    """The two conditions of the Gate step, evaluated on the test split's ``evaluation.json``."""
    auc = _number(value_at(evaluation, AUC_PATH))
    metric_key = str(value_at(evaluation, OPERATING_POINT_METRIC_PATH, None))
    metric = _OPERATING_METRIC_LABEL.get(metric_key, metric_key)
    bar = value_at(evaluation, OPERATING_POINT_BAR_PATH, None)
    return (
        GateCheck(
            "ROC AUC on the test split",
            auc,
            f">= {auc_threshold:g}",
            auc is not None and auc >= auc_threshold,
        ),
        GateCheck(
            f"operating point: {metric} on the test split at the chosen threshold",
            _number(value_at(evaluation, OPERATING_POINT_VALUE_PATH, None)),
            f">= {bar:g}" if isinstance(bar, int | float) else "best F1 (no bar)",
            value_at(evaluation, OPERATING_POINT_MET_PATH, None) == 1,
        ),
    )


@dataclass(frozen=True)
class StepRow:
    name: str
    type: str
    status: str
    offset: float | None  # seconds after the execution started
    seconds: float | None
    failure_reason: str | None
    log: str | None


@dataclass(frozen=True)
class Trial:
    """One tuning trial: its sampled hyperparameters and objective value."""

    name: str
    status: str
    objective: float | None
    hyperparameters: str
    best: bool


@dataclass(frozen=True)
class ExecutionView:
    id: str
    pipeline_name: str
    status: str
    failure_reason: str | None
    seconds: float | None
    parameters: Mapping[str, Any]
    steps: tuple[StepRow, ...]
    folder: str
    trials: tuple[Trial, ...] = ()
    objective: str | None = None  # the tuning objective metric, when the variant tunes


@dataclass(frozen=True)
class PackageView:
    arn: str
    ref: str
    approval_status: str
    registered_status: str


@dataclass(frozen=True)
class Rejected:
    """A record the transform rejected: what the demo planted in it, and the function's own reason."""

    position: int  # among the records sent, from 0
    record_id: str
    planted: str | None
    reason: str
    preview: str


@dataclass(frozen=True)
class Phase:
    name: str
    status: str  # "passed" | "failed" | "not run"
    seconds: float | None
    detail: str


@dataclass(frozen=True)
class Artifact:
    label: str
    path: str


@dataclass(frozen=True)
class ReportData:
    stage: str
    variant: str  # "train" | "tune"
    generated_at: str
    home: str
    passed: bool
    failure: str | None
    phases: tuple[Phase, ...]
    audits: tuple[AuditResult, ...] = ()
    delivery: Delivery | None = None
    rejected: tuple[Rejected, ...] = ()
    data_report: Mapping[str, Any] | None = None
    evaluation: Mapping[str, Any] | None = None
    plots: tuple[Plot, ...] = ()
    gate: Gate | None = None
    execution: ExecutionView | None = None
    package: PackageView | None = None
    scoring: Scoring | None = None
    artifacts: tuple[Artifact, ...] = field(default=())

    @property
    def metrics(self) -> list[MetricRow]:
        return metric_rows(self.evaluation) if self.evaluation else []

    @property
    def confusion(self) -> Confusion | None:
        return confusion(self.evaluation) if self.evaluation else None


# --- Rendering ---------------------------------------------------------------------------------


def shown_path(path: Path | str) -> str:
    """A path relative to the working directory when it lies below it (``.rookery/...``), else absolute."""
    resolved = Path(path).resolve()
    here = Path.cwd().resolve()
    return str(resolved.relative_to(here)) if resolved.is_relative_to(here) else str(resolved)


def _fmt(value: Any, digits: int = 4) -> str:
    number = _number(value)
    if number is None:
        return "-"
    return f"{number:.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    number = _number(value)
    return "-" if number is None else f"{100 * number:.{digits}f}%"


def _secs(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "-"
    if number < 1:
        return f"{1000 * number:.0f} ms"
    return f"{number:.1f} s" if number < 120 else f"{int(number // 60)} min {number % 60:.0f} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("rookery.demo", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_fmt, pct=_pct, secs=_secs, path=shown_path)
    return env


def render_report(data: ReportData) -> str:
    """The report as one HTML document."""
    steps: Sequence[StepRow] = data.execution.steps if data.execution else ()
    span = max(((s.offset or 0) + (s.seconds or 0) for s in steps), default=0.0) or 1.0
    return _environment().get_template("report.html.j2").render(r=data, span=span)


def write_report(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(data), encoding="utf-8")
    tmp.replace(path)
    return path
