"""The demo end to end through the local engine (everything after the audit phase): ingest, run,
approve, serve, score over HTTP, report; a second run in the same home; a gate that fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_testing import assert_report_renders
from playwright.sync_api import Browser

from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker import LocalEngine, LocalHome, LocalRegistry
from rookery.demo.run import DELIVERY_FILE, DemoResult

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo-run")]


def home_of(result: DemoResult) -> LocalHome:
    return LocalHome(result.report_path.parents[1])


def test_every_phase_passes_and_the_report_is_written(demo_train: DemoResult) -> None:
    assert demo_train.passed and demo_train.failure is None
    assert [(p.name, p.status) for p in demo_train.data.phases] == [
        ("ingest", "passed"),
        ("pipeline", "passed"),
        ("approve", "passed"),
        ("serve and score", "passed"),
        ("report", "passed"),
    ]
    assert demo_train.report_path == home_of(demo_train).root / "demo" / "report.html"
    assert "Demo passed" in demo_train.report_path.read_text()


def test_the_registered_version_is_approved_with_the_evaluations_metrics(demo_train: DemoResult) -> None:
    home = home_of(demo_train)
    execution = demo_train.data.execution
    assert execution is not None and execution.status == "Succeeded"

    (package,) = LocalRegistry(home).packages("rookery-dev-models")

    assert package.approval_status == "Approved" and package.execution_id == execution.id
    assert demo_train.data.package is not None
    assert demo_train.data.package.registered_status == "PendingManualApproval"
    assert package.metrics == demo_train.data.evaluation


def test_http_scoring_reproduces_the_evaluation_and_the_batch_transform(demo_train: DemoResult) -> None:
    scoring, evaluation = demo_train.data.scoring, demo_train.data.evaluation
    assert scoring is not None and evaluation is not None
    matrix = evaluation["binary_classification_metrics"]["confusion_matrix"]

    assert scoring.records == evaluation["dataset"]["test_rows"] == scoring.transform_rows
    assert scoring.agrees_with_transform
    # Served at the threshold Evaluate chose, the endpoint scores the test split exactly as Evaluate did.
    assert (scoring.true_positives, scoring.false_negatives) == (matrix["1"]["1"], matrix["1"]["0"])
    assert (scoring.true_negatives, scoring.false_positives) == (matrix["0"]["0"], matrix["0"]["1"])
    assert scoring.accuracy == pytest.approx(evaluation["binary_classification_metrics"]["accuracy"]["value"])


def test_the_report_lists_where_every_artifact_is_and_they_exist(demo_train: DemoResult) -> None:
    labels = {a.label: a.path for a in demo_train.data.artifacts}

    for label in (
        "this report",
        "transform Lambda log (reasons for rejected records)",
        "ingested records (Firehose object)",
        "rejected records (Firehose error output)",
        "execution record (status, timings, properties)",
        "data report (Preprocess)",
        "evaluation.json (metrics, threshold, operating point)",
        "model artifact (model.tar.gz)",
        "model package version (registry)",
        "batch transform output (test split)",
        "Train log",
    ):
        assert label in labels
    assert all(Path(a.path).exists() for a in demo_train.data.artifacts)


def test_step_timings_come_from_the_execution_record(demo_train: DemoResult) -> None:
    execution = demo_train.data.execution
    assert execution is not None
    record = LocalEngine(home_of(demo_train), ImageMap({})).execution(execution.id)

    rows = {s.name: s for s in execution.steps}
    assert set(rows) == {s.name for s in record.steps}
    assert rows["Train"].seconds == record.step("Train").seconds
    assert rows["Fail"].status == "Skipped" and rows["Fail"].seconds is None
    assert all(r.offset is not None and r.offset >= 0 for r in rows.values() if r.status == "Succeeded")


def test_a_second_run_replaces_the_first_delivery_and_tunes(
    demo_train: DemoResult, demo_tune: DemoResult
) -> None:
    home = home_of(demo_tune)
    assert demo_tune.passed, demo_tune.failure
    manifest = json.loads((home.root / "demo" / DELIVERY_FILE).read_text())
    raw = sorted(p for p in (home.s3_root / "rookery-dev-raw").rglob("*") if p.is_file())

    # Only the second delivery is left: Preprocess must not read the first one again as duplicates.
    assert [LocalS3(home).uri(p) for p in raw] == sorted(manifest["written"])
    assert demo_tune.data.data_report is not None
    assert demo_tune.data.data_report["rows"]["dropped_duplicate"] == 0

    versions = LocalRegistry(home).packages("rookery-dev-models")
    assert [(p.version, p.approval_status) for p in versions] == [(1, "Approved"), (2, "Approved")]
    execution = demo_tune.data.execution
    assert execution is not None
    assert [s.name for s in execution.steps if s.type == "Tuning"] == ["Tune"]
    trials = execution.trials
    assert len(trials) == 8 and sum(t.best for t in trials) == 1 and trials[0].best
    assert 'id="trials"' in demo_tune.report_path.read_text()


def test_a_failing_gate_stops_the_demo_with_the_fail_steps_message(demo_gate_failed: DemoResult) -> None:
    data = demo_gate_failed.data
    assert not demo_gate_failed.passed
    assert demo_gate_failed.failure is not None
    assert demo_gate_failed.failure.startswith("pipeline: the pipeline execution ")
    assert "step Fail: Model gate failed on the test split: auc = " in demo_gate_failed.failure
    assert "(bar: at least 0.999)" in demo_gate_failed.failure
    assert [(p.name, p.status) for p in data.phases][1:] == [
        ("pipeline", "failed"),
        ("approve", "not run"),
        ("serve and score", "not run"),
        ("report", "passed"),
    ]
    assert LocalRegistry(home_of(demo_gate_failed)).packages() == []
    assert data.gate is not None and data.gate.passed is False
    assert not data.gate.checks[0].met and data.gate.message is not None


def test_the_failed_demos_report_shows_the_evaluation_and_why_it_stopped(
    demo_gate_failed: DemoResult,
) -> None:
    html = demo_gate_failed.report_path.read_text()

    assert "Demo FAILED: pipeline: the pipeline execution" in html
    assert html.count("data:image/png;base64,") == 2  # the plots of the failed model are still there
    assert "Nothing was registered." in html
    assert "Scoring did not run" in html


def test_the_demos_own_report_renders_in_chromium(browser: Browser, demo_train: DemoResult) -> None:
    evaluation = demo_train.data.evaluation
    assert evaluation is not None

    assert_report_renders(
        browser, demo_train.report_path, auc=evaluation["binary_classification_metrics"]["auc"]["value"]
    )
