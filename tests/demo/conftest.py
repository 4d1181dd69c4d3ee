"""Session fixtures for the demo tests: one real delivery of the demo records through the real Firehose
transform, and the project image's jobs run on it. Tests sharing one mark the same xdist group.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_testing import ARRIVAL, JobsRun, run_jobs

from pipelines.local.home import LocalHome
from rookery.config import Stage, load_stage
from rookery.demo.dataset import demo_records
from rookery.demo.firehose import Delivery, DeliveryStream, deliver


@pytest.fixture(scope="session")
def dev() -> Stage:
    return load_stage("dev")


@pytest.fixture(scope="session")
def delivered(tmp_path_factory: pytest.TempPathFactory, dev: Stage) -> tuple[LocalHome, Delivery]:
    home = LocalHome(tmp_path_factory.mktemp("demo-home"))
    delivery = deliver(
        demo_records(dev.dataset),
        DeliveryStream.for_stage(dev),
        home,
        log_path=home.root / "demo" / "ingest" / "firehose_transform.log",
        arrival=ARRIVAL,
    )
    return home, delivery


@pytest.fixture(scope="session")
def jobs(
    tmp_path_factory: pytest.TempPathFactory, dev: Stage, delivered: tuple[LocalHome, Delivery]
) -> JobsRun:
    """Preprocess, Train and Evaluate run directly on the delivered raw data (no engine)."""
    home, _ = delivered
    raw = home.s3_path(f"s3://{DeliveryStream.for_stage(dev).bucket}/{dev.dataset.name}")
    return run_jobs(
        raw,
        dev.dataset.model_dump_json(),
        Path(tmp_path_factory.mktemp("demo-jobs")),
        operating_point="min_sensitivity:0.85",
    )
