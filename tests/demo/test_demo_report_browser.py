"""The report in a real headless browser (Debian's chromium, as .ci/run installs it): the metrics table
is there and both plots are rendered, with the network unused. The demo's own report gets the same
check in test_demo_run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_testing import JobsRun, assert_report_renders, report_from
from playwright.sync_api import Browser

from emulators.core.home import LocalHome
from emulators.firehose import Delivery
from rookery.demo.report import write_report

pytestmark = pytest.mark.xdist_group("demo-ingest")


def test_the_report_renders_in_chromium_with_metrics_and_both_plots(
    browser: Browser, tmp_path: Path, jobs: JobsRun, delivered: tuple[LocalHome, Delivery]
) -> None:
    path = write_report(report_from(jobs, delivered[1]), tmp_path / "report.html")

    assert_report_renders(browser, path, auc=jobs.evaluation["binary_classification_metrics"]["auc"]["value"])
