"""The demo end to end through the local engine (everything after the audit phase): ingest, run,
approve, deploy and score over HTTP, monitor the test split and a shifted copy, swap a second version,
roll a broken one back, report; a second run in the same home; a gate that fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from demo_testing import assert_monitoring_renders, assert_report_renders, embedded_png
from playwright.sync_api import Browser

from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker import LocalEngine, LocalHome, LocalRegistry
from rookery.demo.deployment import DeploymentStory
from rookery.demo.monitoring import MonitoringStory
from rookery.demo.run import DELIVERY_FILE, DemoResult
from stage import load_stage
from stage.names import CAPTURE_PREFIX, alarm_names

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo-run")]


def home_of(result: DemoResult) -> LocalHome:
    return LocalHome(result.report_path.parents[1])


def test_every_phase_passes_and_the_report_is_written(demo_train: DemoResult) -> None:
    assert demo_train.passed and demo_train.failure is None
    assert [(p.name, p.status) for p in demo_train.data.phases] == [
        ("ingest", "passed"),
        ("pipeline", "passed"),
        ("approve", "passed"),
        ("deploy and score", "passed"),
        ("monitor", "passed"),
        ("swap", "passed"),
        ("rollback", "passed"),
        ("report", "passed"),
    ]
    assert demo_train.report_path == home_of(demo_train).root / "demo" / "report.html"
    assert "Demo passed" in demo_train.report_path.read_text()


def test_the_registered_version_is_approved_with_the_evaluations_metrics(demo_train: DemoResult) -> None:
    home = home_of(demo_train)
    execution = demo_train.data.execution
    assert execution is not None and execution.status == "Succeeded"

    package = LocalRegistry(home).packages("rookery-dev-models")[0]

    assert package.version == 1
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
    bucket = home.s3_root / "rookery-dev-raw"
    # The endpoint's data capture lands in the same bucket, under its own prefix.
    captured = bucket / CAPTURE_PREFIX
    raw = sorted(p for p in bucket.rglob("*") if p.is_file() and not p.is_relative_to(captured))

    # Only the second delivery is left: Preprocess must not read the first one again as duplicates.
    assert [LocalS3(home).uri(p) for p in raw] == sorted(manifest["written"])
    assert demo_tune.data.data_report is not None
    assert demo_tune.data.data_report["rows"]["dropped_duplicate"] == 0

    versions = LocalRegistry(home).packages("rookery-dev-models")
    # Each run registers one version, swaps in a second and rejects the broken third.
    assert [(p.version, p.approval_status) for p in versions] == [
        (1, "Approved"),
        (2, "Approved"),
        (3, "Rejected"),
        (4, "Approved"),
        (5, "Approved"),
        (6, "Rejected"),
    ]
    execution = demo_tune.data.execution
    assert execution is not None
    assert versions[3].execution_id == execution.id
    assert [s.name for s in execution.steps if s.type == "Tuning"] == ["Tune"]
    trials = execution.trials
    assert len(trials) == 8 and sum(t.best for t in trials) == 1 and trials[0].best
    assert 'id="trials"' in demo_tune.report_path.read_text()


def story_of(result: DemoResult) -> DeploymentStory:
    (section,) = [s for s in result.data.sections if s.id == "deployment"]
    assert isinstance(section.data, DeploymentStory)
    return section.data


def deployment_record(result: DemoResult, deployment_id: str) -> dict[str, Any]:
    path = home_of(result).endpoints_dir / "rookery-dev-demo" / "deployments" / f"{deployment_id}.json"
    return dict(json.loads(path.read_text()))


def test_the_approved_version_went_live_by_the_deployers_decision(demo_train: DemoResult) -> None:
    told = story_of(demo_train)
    scoring = demo_train.data.scoring

    assert told.first_version == "rookery-dev-models/1"
    assert told.first_decision == "version 1 is the highest approved; no endpoint serves a model yet"
    assert scoring is not None and scoring.endpoint_name == told.endpoint_name == "rookery-dev-demo"
    assert told.time_scale == 100 and told.swap_wait_seconds == 660  # dev: 2 bakes of 300 s + 60 s
    assert told.rescored is not None and "50 of 50 labels equal to the batch transform's" in told.rescored


def test_the_swap_moves_all_traffic_to_the_second_version_without_a_failed_request(
    demo_train: DemoResult,
) -> None:
    swap = story_of(demo_train).swap
    assert swap is not None
    record = deployment_record(demo_train, swap.deployment_id)

    assert (swap.previous, swap.target) == ("rookery-dev-models/1", "rookery-dev-models/2")
    assert swap.status == record["Status"] == "Succeeded", swap.reason
    assert swap.serving_after == "rookery-dev-models/2" and swap.status_after == "InService"
    assert record["Timeline"][-1]["Shares"] == {"blue": 0.0, "green": 1.0}
    assert (swap.shares[-1].blue, swap.shares[-1].green) == (0.0, 1.0)
    assert swap.canary_share == 0.5  # a canary of 1 of the dev stage's 2 instances
    assert swap.requests > 0 and swap.failures == 0 and swap.failures_after == 0
    assert swap.full_traffic is not None and 0 < swap.traffic_shifted < swap.full_traffic < swap.ended  # type: ignore[operator]
    assert [s.what for s in swap.spans] == ["new fleet starts", "bake 1", "bake 2", "termination wait"]


def test_the_broken_candidate_is_rolled_back_by_the_error_rate_alarm(demo_train: DemoResult) -> None:
    told = story_of(demo_train)
    rollback = told.rollback
    assert rollback is not None
    record = deployment_record(demo_train, rollback.deployment_id)
    versions = LocalRegistry(home_of(demo_train)).packages("rookery-dev-models")

    assert (rollback.previous, rollback.target) == ("rookery-dev-models/2", "rookery-dev-models/3")
    assert rollback.status == record["Status"] == "Failed"
    # The endpoint still serves the version it served before, in service.
    assert rollback.serving_after == "rookery-dev-models/2" and rollback.status_after == "InService"
    assert record["Timeline"][-1]["Shares"] == {"blue": 1.0, "green": 0.0}
    assert rollback.alarm is not None and rollback.alarm.name == alarm_names(load_stage("dev"))["errors"]
    assert rollback.alarm.name in rollback.reason and rollback.alarm.threshold == "5.0%"
    assert rollback.alarm.breaching >= rollback.alarm.datapoints_to_alarm
    # Clients saw the canary's failures during the bake and none after traffic went back.
    assert rollback.canary_failures > 0 and rollback.failures_after == 0
    assert rollback.failures == rollback.canary_failures
    assert told.rejected == "none: the endpoint already serves version 2, the highest approved"
    assert [(p.version, p.approval_status) for p in versions] == [
        (1, "Approved"),
        (2, "Approved"),
        (3, "Rejected"),
    ]


def test_the_report_shows_the_deployment_with_both_timeline_plots(demo_train: DemoResult) -> None:
    html = demo_train.report_path.read_text()
    folder = demo_train.report_path.parent / "deployment"
    told = story_of(demo_train)
    assert told.rollback is not None and told.rollback.alarm is not None

    assert '<section id="deployment">' in html
    for kind in ("swap", "rollback"):
        assert embedded_png(html, f"deployment-{kind}-plot") == (folder / f"{kind}.png").read_bytes()
    assert f"alarm <code>{told.rollback.alarm.name}</code>: Invocation5XXErrors Average was " in html
    assert "Time scale 100x" in html
    labels = {a.label for a in demo_train.data.artifacts}
    assert {"deployment timeline plot (swap)", "deployment timeline plot (rollback)"} <= labels
    assert "data capture (SageMaker's format)" in labels


def monitoring_of(result: DemoResult) -> MonitoringStory:
    [section] = [s for s in result.data.sections if s.id == "monitoring"]
    assert isinstance(section.data, MonitoringStory)
    return section.data


def test_monitoring_passes_the_test_split_and_flags_exactly_the_shifted_features(
    demo_train: DemoResult,
) -> None:
    told = monitoring_of(demo_train)
    clean, moved = told.comparison.clean, told.comparison.moved
    dataset = load_stage("dev").dataset
    [served] = [p for p in LocalRegistry(home_of(demo_train)).packages() if p.ref == told.package]

    # Judged by the served version's own baseline, its drift-check baselines.
    assert (told.endpoint, told.package) == ("rookery-dev-demo", "rookery-dev-models/1")
    assert told.baseline == served.drift_check_baselines["ModelDataQuality"]["Statistics"]["S3Uri"]
    # Each window holds exactly the records sent in it: the test split, then its shifted copy.
    assert clean.report["records"] == moved.report["records"] == told.sent == 50
    assert clean.report["window"]["end"] <= moved.report["window"]["start"]
    assert clean.report["status"] == "no violations" and clean.violations == []
    assert told.shift.features == {dataset.numeric[-1], dataset.categorical[-1]} == {"body_mass_g", "island"}
    assert {(v["feature_name"], v["constraint_check_type"]) for v in moved.violations} == {
        ("body_mass_g", "baseline_drift_check"),
        ("island", "baseline_drift_check"),
    }
    assert told.comparison.as_expected and told.flagged == ["body_mass_g", "island"]
    [phase] = [p for p in demo_train.data.phases if p.name == "monitor"]
    assert "body_mass_g, island flagged, exactly the shifted features" in phase.detail
    html = demo_train.report_path.read_text()
    assert '<section id="monitoring">' in html and told.shift.describe() in html.replace("&#39;", "'")


def test_the_demos_monitoring_section_renders_in_chromium(browser: Browser, demo_train: DemoResult) -> None:
    told = monitoring_of(demo_train)
    features = load_stage("dev").dataset.features

    assert_monitoring_renders(browser, demo_train.report_path, features=features, shifted=told.shift.features)


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
        ("deploy and score", "not run"),
        ("monitor", "not run"),
        ("swap", "not run"),
        ("rollback", "not run"),
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
    assert "The deployment did not run" in html
    assert "Monitoring did not run" in html


def test_the_demos_own_report_renders_in_chromium(browser: Browser, demo_train: DemoResult) -> None:
    evaluation = demo_train.data.evaluation
    assert evaluation is not None

    assert_report_renders(
        browser, demo_train.report_path, auc=evaluation["binary_classification_metrics"]["auc"]["value"]
    )
