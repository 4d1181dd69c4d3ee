"""Helpers for the demo tests: a fixed arrival time, local S3 listing, and the project image's jobs run
directly on what ingestion delivered (the artifacts the report is built from, without the engine).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, Page, Request
from typer.testing import CliRunner

from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.core.sandbox import LOCAL_IMAGE, Sandbox
from emulators.firehose import Delivery
from emulators.s3 import LocalS3
from pipelines.contract import PREPROCESS_PASSES, PROGRAM_DIR
from rookery.cli.main import app as cli_app
from rookery.demo import run as demo_run
from rookery.demo.report import (
    Artifact,
    ExecutionView,
    Gate,
    Phase,
    Rejected,
    ReportData,
    StepRow,
    embed_png,
    gate_checks,
)
from rookery.demo.run import DemoResult

REPO = Path(__file__).resolve().parents[2]
# The project image as the local engine runs it.
IMAGES: Final = ImageMap.project(LOCAL_IMAGE)
ARRIVAL = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)
# Small and fast: the report needs a real model, not a good one.
HYPERPARAMETERS = {"num_round": 30, "max_depth": 3, "eta": 0.3, "eval_metric": "auc", "seed": 1}


def files_under(home: LocalHome, uri: str) -> list[Path]:
    root = LocalS3(home).path(uri)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _run(script: str, job: Sandbox, *args: str, env: Mapping[str, str] | None = None) -> None:
    """One entrypoint of the project image in ``job``, as the local engine runs it."""
    done = subprocess.run(
        IMAGES.command(LOCAL_IMAGE, [f"{PROGRAM_DIR}/{script}", *args], default=""),
        env=IMAGES.environment(LOCAL_IMAGE, job.base, dict(env or {})),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


@dataclass(frozen=True)
class JobsRun:
    """preprocess -> train -> evaluate on the raw bucket's dataset prefix, each in its own /opt/ml sandbox."""

    root: Path

    @property
    def data_report(self) -> Path:
        return Sandbox(self.root / "preprocess").processing_output("report") / "data_report.json"

    @property
    def evaluation_dir(self) -> Path:
        return Sandbox(self.root / "evaluate").processing_output("evaluation")

    @property
    def evaluation(self) -> dict[str, Any]:
        return dict(json.loads((self.evaluation_dir / "evaluation.json").read_text()))


def run_jobs(raw_prefix: Path, schema_json: str, root: Path, *, operating_point: str) -> JobsRun:
    """Stage ``raw_prefix`` as Preprocess's input and run the three jobs as SageMaker would."""
    prep = Sandbox(root / "preprocess")
    shutil.copytree(raw_prefix, prep.processing_input("raw") / raw_prefix.name)
    for entrypoint, _, output in PREPROCESS_PASSES:  # the three preprocessing jobs, on one instance
        _run(PurePosixPath(entrypoint[-1]).name, prep, env={"ROOKERY_DATASET_SCHEMA": schema_json})
        if output is not None:
            shutil.copytree(prep.processing_output(output), prep.processing_input(output))
    channels = ("train", "validation", "preprocessor")
    train = Sandbox(root / "train")
    train.write_training_config(
        {k: str(v) for k, v in HYPERPARAMETERS.items()},
        {c: {"ContentType": "text/csv"} for c in channels},
        {"current_host": "algo-1", "hosts": ["algo-1"]},
    )
    for channel in channels:
        shutil.copytree(prep.processing_output(channel), train.channel(channel))
    _run("train", train)
    evaluate = Sandbox(root / "evaluate")
    train.pack_model(evaluate.processing_input("model"))
    for split in ("test", "validation"):
        shutil.copytree(prep.processing_output(split), evaluate.processing_input(split))
    _run("evaluate.py", evaluate, "--operating-point", operating_point)
    return JobsRun(root)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> Path | None:
    """Debian's chromium (what `make browser` installs), or None."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    return Path(found) if found else None


def report_from(jobs: JobsRun, delivery: Delivery, **changes: object) -> ReportData:
    evaluation = jobs.evaluation
    plots = (
        embed_png(
            jobs.evaluation_dir / "confusion_matrix.png", title="Confusion matrix", alt="confusion matrix"
        ),
        embed_png(jobs.evaluation_dir / "roc.png", title="ROC curve", alt="ROC curve"),
    )
    values: dict[str, object] = {
        "stage": "dev",
        "variant": "train",
        "generated_at": "2024-05-01 12:40:00 UTC",
        "home": ".rookery",
        "passed": True,
        "failure": None,
        "phases": (
            Phase("ingest", "passed", 0.7, "349 records in"),
            Phase("report", "passed", 0.1, "written"),
        ),
        "delivery": delivery,
        "rejected": tuple(
            Rejected(f.position, f.record_id, None, f.reason, f.preview) for f in delivery.failures
        ),
        "data_report": json.loads(jobs.data_report.read_text()),
        "evaluation": evaluation,
        "plots": plots,
        "gate": Gate(True, gate_checks(evaluation, 0.85), None),
        "execution": ExecutionView(
            id="abcdef123456",
            pipeline_name="rookery-dev-pipeline",
            status="Succeeded",
            failure_reason=None,
            seconds=12.0,
            parameters={"AucThreshold": 0.85},
            steps=(
                StepRow("Preprocess", "Processing", "Succeeded", 0.0, 2.0, None, None),
                StepRow("Train", "Training", "Succeeded", 2.0, 4.0, None, None),
                StepRow("Fail", "Fail", "Skipped", None, None, None, None),
            ),
            folder=".rookery/executions/abcdef123456",
        ),
        "artifacts": (Artifact("data report", str(jobs.data_report)),),
    }
    values.update(changes)
    return ReportData(**values)  # type: ignore[arg-type]


def embedded_png(html: str, image_id: str) -> bytes:
    """The PNG embedded as a data URI in the report's image ``image_id``."""
    found = re.search(rf'<img id="{re.escape(image_id)}" [^>]*src="data:image/png;base64,([^"]+)"', html)
    assert found is not None, f"no image {image_id} with an embedded PNG in the report"
    return base64.b64decode(found[1])


def open_report(browser: Browser, path: Path) -> tuple[Page, list[str]]:
    """The report loaded from disk; the second value lists every request that left the file."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith(("file://", "data:")):
            outside.append(request.url)

    page.on("request", note)
    page.goto(path.as_uri(), wait_until="load")
    return page, outside


def assert_report_renders(browser: Browser, path: Path, *, auc: float) -> None:
    page, outside = open_report(browser, path)
    try:
        metrics = page.locator("table#metrics")
        assert metrics.is_visible()
        text = metrics.inner_text()
        for label in ("Accuracy", "Precision", "Recall (sensitivity)", "Specificity", "F1", "ROC AUC"):
            assert label in text
        assert page.locator('tr[data-metric="auc"] td').nth(1).inner_text() == f"{auc:.4f}"

        plots = page.locator("img.plot")
        assert plots.count() == 2
        for i in range(2):
            plot = plots.nth(i)
            plot.scroll_into_view_if_needed()
            assert plot.is_visible()
            assert plot.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0")
            box = plot.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 150
        # Side by side on a desktop-width window.
        first, second = plots.nth(0).bounding_box(), plots.nth(1).bounding_box()
        assert first is not None and second is not None and abs(first["y"] - second["y"]) < 5
        assert first["x"] < second["x"]
        assert outside == [], f"the report loaded assets from outside the file: {outside}"
    finally:
        page.close()


def assert_monitoring_renders(
    browser: Browser, path: Path, *, features: Sequence[str], shifted: Collection[str]
) -> None:
    """The monitoring section: a row per feature in both windows' tables, nothing flagged on the test
    split, exactly ``shifted`` on the shifted copy, and the per-feature plot drawn with two bars per
    feature."""
    page, outside = open_report(browser, path)
    try:
        section = page.locator("section#monitoring")
        section.scroll_into_view_if_needed()
        assert section.is_visible()
        for table, expected in (("monitoring-clean", set()), ("monitoring-shifted", set(shifted))):
            rows = page.locator(f"table#{table} tbody tr")
            assert rows.count() == len(features)
            seen = [rows.nth(i).get_attribute("data-feature") for i in range(rows.count())]
            assert sorted(str(name) for name in seen) == sorted(features)
            flagged = page.locator(f'table#{table} tbody tr[data-flagged="true"]')
            assert {flagged.nth(i).get_attribute("data-feature") for i in range(flagged.count())} == expected
            for name in expected:
                assert (
                    "baseline_drift_check"
                    in page.locator(f'table#{table} tr[data-feature="{name}"]').inner_text()
                )
        plot = page.locator("#monitoring-plot svg")
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        assert page.locator("#monitoring-plot svg rect").count() == 2 * len(features)
        shift = page.locator("#monitoring-shift").inner_text()
        assert all(name in shift for name in shifted)
        assert outside == [], f"the report loaded assets from outside the file: {outside}"
    finally:
        page.close()


@dataclass(frozen=True)
class CliDemo:
    """``rookery demo`` through the CLI: its exit code, what it printed, and the result it rendered."""

    code: int
    out: str
    err: str
    result: DemoResult | None  # None when it stopped before the phases ran (a usage error)


def run_cli_demo(*args: str) -> CliDemo:
    """Run ``rookery demo ARGS`` and keep the ``DemoResult`` its ``run_demo`` call returned.

    The demo runs unchanged; the wrapper only records the return value, so one run serves the tests
    of what the user reads and the tests of what the demo did.
    """
    results: list[DemoResult] = []
    real = demo_run.run_demo

    def recording(*call_args: Any, **kwargs: Any) -> DemoResult:
        result = real(*call_args, **kwargs)
        results.append(result)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_run, "run_demo", recording)
        done = CliRunner().invoke(cli_app, ["demo", *args])
    return CliDemo(done.exit_code, done.stdout, done.stderr, results[0] if results else None)
