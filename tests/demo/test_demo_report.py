"""The HTML report, built from real artifacts: the Firehose delivery and the project image's own
data report, evaluation.json and PNGs (the jobs run directly, as the engine would run them).
"""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import pytest
from demo_testing import JobsRun, report_from
from markupsafe import escape

from emulators.core.home import LocalHome
from emulators.firehose import Delivery
from rookery.demo.report import (
    Phase,
    ReportData,
    ReportError,
    confusion,
    embed_png,
    gate_checks,
    metric_rows,
    render_report,
    write_report,
)

pytestmark = pytest.mark.xdist_group("demo-ingest")


class _Assets(HTMLParser):
    """Every src/href in a document, and the text of each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def test_metric_rows_are_evaluation_json_values(jobs: JobsRun) -> None:
    evaluation = jobs.evaluation
    rows = {r.key: r for r in metric_rows(evaluation)}
    metrics = evaluation["binary_classification_metrics"]

    assert list(rows) == ["accuracy", "precision", "recall", "specificity", "f1", "auc", "pr_auc"]
    assert all(rows[k].value == metrics[k]["value"] for k in rows)
    assert rows["f1"].baseline == metrics["f1_best_constant_classifier"]["value"]
    assert rows["auc"].baseline is None
    assert rows["auc"].deviation is None  # "NaN" under 200 test rows


def test_the_confusion_matrix_is_read_as_actual_then_predicted(jobs: JobsRun) -> None:
    evaluation = jobs.evaluation
    matrix = evaluation["binary_classification_metrics"]["confusion_matrix"]
    c = confusion(evaluation)

    assert (c.positive, c.negative) == ("female", "male")
    assert (c.true_positives, c.false_negatives) == (matrix["1"]["1"], matrix["1"]["0"])
    assert (c.true_negatives, c.false_positives) == (matrix["0"]["0"], matrix["0"]["1"])
    assert c.total == evaluation["dataset"]["test_rows"]


def test_gate_checks_follow_the_threshold(jobs: JobsRun) -> None:
    evaluation = jobs.evaluation
    auc = evaluation["binary_classification_metrics"]["auc"]["value"]

    passing = gate_checks(evaluation, 0.85)
    failing = gate_checks(evaluation, auc + 0.001)

    assert passing[0].met and passing[0].value == auc and passing[0].bar == ">= 0.85"
    assert not failing[0].met
    assert passing[1].met == (evaluation["operating_point"]["met"] == 1)
    assert "recall (sensitivity)" in passing[1].check


def test_the_report_holds_every_section_from_the_real_artifacts(
    jobs: JobsRun, delivered: tuple[LocalHome, Delivery]
) -> None:
    _, delivery = delivered
    data = report_from(jobs, delivery)
    auc = jobs.evaluation["binary_classification_metrics"]["auc"]["value"]
    threshold = jobs.evaluation["decision_threshold"]

    html = render_report(data)

    for section in (
        "summary",
        "audit",
        "ingestion",
        "data",
        "model",
        "threshold",
        "gate",
        "pipeline",
        "scoring",
    ):
        assert f'<section id="{section}">' in html
    assert f'<td>ROC AUC</td><td class="num">{auc:.4f}</td>' in html
    assert str(escape(threshold["reason"])) in html and f"{threshold['value']:.4f}" in html
    assert "344" in html and "processing failed" in html
    assert str(escape(delivery.failures[0].reason)) in html
    assert "dropped: no target value" in html  # the data report's own reason
    assert "Demo passed" in html


def test_the_plots_are_the_evaluate_pngs_embedded_and_nothing_is_loaded_from_outside(
    jobs: JobsRun, delivered: tuple[LocalHome, Delivery]
) -> None:
    html = render_report(report_from(jobs, delivered[1]))
    parser = _Assets()
    parser.feed(html)

    images = [link for link in parser.links if link.startswith("data:image/png;base64,")]
    assert [base64.b64decode(i.split(",", 1)[1]) for i in images] == [
        (jobs.evaluation_dir / "confusion_matrix.png").read_bytes(),
        (jobs.evaluation_dir / "roc.png").read_bytes(),
    ]
    assert all(link.startswith(("data:", "#")) for link in parser.links), parser.links


def test_a_failed_demo_says_where_it_stopped_and_escapes_what_it_quotes(tmp_path: Path) -> None:
    data = ReportData(
        stage="dev",
        variant="train",
        generated_at="now",
        home=".rookery",
        passed=False,
        failure="pipeline: step Fail: Model gate failed <script>alert(1)</script>",
        phases=(Phase("pipeline", "failed", 3.0, "gate"), Phase("approve", "not run", None, "stopped")),
    )

    path = write_report(data, tmp_path / "demo" / "report.html")
    html = path.read_text()

    assert "Demo FAILED: pipeline: step Fail: Model gate failed &lt;script&gt;" in html
    assert "<script>" not in html
    assert "Evaluate did not run" in html and "Ingestion did not run" in html
    assert '<span class="pill skip">not run</span>' in html


def test_plots_that_are_missing_or_not_png_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"roc\.png cannot be read"):
        embed_png(tmp_path / "roc.png", title="ROC", alt="ROC")
    (tmp_path / "roc.png").write_text("not a png")
    with pytest.raises(ReportError, match=r"roc\.png is not a PNG"):
        embed_png(tmp_path / "roc.png", title="ROC", alt="ROC")


def test_an_evaluation_without_metrics_is_refused() -> None:
    with pytest.raises(ReportError, match="no binary_classification_metrics"):
        metric_rows({"decision_threshold": {}})
    with pytest.raises(ReportError, match=r"auc\.value = 'high' is not a number"):
        metric_rows({"binary_classification_metrics": {"auc": {"value": "high"}}})
