"""Session fixtures for the demo tests: one real delivery of the demo records through the real Firehose
transform and the project image's jobs run on it; the demo itself (after its audit phase) through the
local engine, train then tune in one home, and with a gate that must fail. Tests sharing a fixture
mark the same xdist group.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_testing import ARRIVAL, CHROMIUM_FLAGS, REPO, CliDemo, JobsRun, chromium, run_cli_demo, run_jobs
from playwright.sync_api import Browser, sync_playwright

from emulators.core.home import LocalHome
from emulators.firehose import Delivery, DeliveryStream, deliver
from emulators.s3 import LocalS3
from rookery.demo.dataset import demo_records
from rookery.demo.run import DemoOptions, DemoResult, prepare, run_demo
from stage import Stage, load_stage


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
    raw = LocalS3(home).path(f"s3://{DeliveryStream.for_stage(dev).bucket}/{dev.dataset.name}")
    return run_jobs(
        raw,
        dev.dataset.to_json(),
        Path(tmp_path_factory.mktemp("demo-jobs")),
        operating_point="min_sensitivity:0.85",
    )


@pytest.fixture(scope="session")
def demo_train_cli(tmp_path_factory: pytest.TempPathFactory) -> CliDemo:
    """``rookery demo --no-audit`` (train variant) in its own home: what it printed, and its result."""
    return run_cli_demo("--no-audit", "--home", str(tmp_path_factory.mktemp("demo-run")))


@pytest.fixture(scope="session")
def demo_train(demo_train_cli: CliDemo) -> DemoResult:
    """The whole demo after the audit (train variant), as the CLI ran it."""
    assert demo_train_cli.result is not None, demo_train_cli.err
    return demo_train_cli.result


@pytest.fixture(scope="session")
def demo_tune(demo_train: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """The tune variant run again in a copy of the train run's home (a second demo on the same machine).

    A copy, so the train run's report, registry and executions stay as the tests of ``demo_train``
    expect them whichever order the tests run in.
    """
    root = tmp_path_factory.mktemp("demo-rerun") / "home"
    shutil.copytree(demo_train.report_path.parents[1], root, symlinks=True)
    return run_demo(prepare(DemoOptions(home=LocalHome(root), audit=(), tune=True)))


@pytest.fixture(scope="session")
def weak_stages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage "weak": dev with a one-stump model and an AUC bar of 0.999, so the gate must fail."""
    folder = tmp_path_factory.mktemp("stages")
    text = (REPO / "infra" / "stages" / "dev.toml").read_text()
    assert "auc_threshold = 0.85" in text
    text = text.replace("auc_threshold = 0.85", "auc_threshold = 0.999")
    text += (
        "\n[ml.training.hyperparameters]\n"
        'objective = "binary:logistic"\neval_metric = "auc"\nnum_round = 1\nmax_depth = 1\neta = 0.1\n'
    )
    (folder / "weak.toml").write_text(text)
    return folder


@pytest.fixture(scope="session")
def demo_gate_failed_cli(tmp_path_factory: pytest.TempPathFactory, weak_stages: Path) -> CliDemo:
    """``rookery demo --no-audit --stage weak``: the gate must stop it."""
    home = tmp_path_factory.mktemp("demo-weak")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("stage.STAGES_DIR", weak_stages)  # where --stage names are looked up
        return run_cli_demo("--no-audit", "--stage", "weak", "--home", str(home))


@pytest.fixture(scope="session")
def demo_gate_failed(demo_gate_failed_cli: CliDemo) -> DemoResult:
    assert demo_gate_failed_cli.result is not None, demo_gate_failed_cli.err
    return demo_gate_failed_cli.result


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop registered on this
    # thread while it is open, and every later asyncio.run() in the same worker would fail.
    executable = chromium()
    if executable is None:
        pytest.fail(
            "no chromium browser found (looked for `chromium` on PATH and /usr/bin/chromium). The report's "
            "browser test needs Debian's chromium: `make test` installs it as root; otherwise run "
            "`sudo apt-get install -y --no-install-recommends chromium`"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()
