"""Session fixtures for the local-engine tests: the rendered definitions and the expensive runs.

Tests that share a run mark themselves with the run's xdist group, so it happens once, on one
worker: ``local-train`` (the CLI's train run on penguins, its endpoint), ``local-tune`` (the tune
variant through the engine API) and ``local-synth`` (gate failure and spot interruption on the
synthetic dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from local_testing import SMALL_TRAINING, render, stage, synthetic_stage

from stage import Stage


@pytest.fixture(scope="session")
def dev_stage() -> Stage:
    return stage("dev")


@pytest.fixture(scope="session")
def dev_train_definition(dev_stage: Stage) -> dict[str, Any]:
    """The dev stage's train variant, exactly as `rookery local run --stage dev` renders it."""
    return render(dev_stage, tune=False)


@pytest.fixture(scope="session")
def tune_stage() -> Stage:
    return stage(
        "dev", hyperparameters=SMALL_TRAINING, tuning={"enabled": True, "max_jobs": 4, "max_parallel_jobs": 2}
    )


@pytest.fixture(scope="session")
def tune_definition(tune_stage: Stage) -> dict[str, Any]:
    return render(tune_stage, tune=True)


@pytest.fixture(scope="session")
def synth_stage() -> Stage:
    return synthetic_stage()


@pytest.fixture
def definition(dev_train_definition: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the dev train definition, for tests that change it."""
    import copy  # noqa: PLC0415

    return copy.deepcopy(dev_train_definition)


@pytest.fixture
def tmp_home(tmp_path: Path) -> Any:
    from local_testing import new_home  # noqa: PLC0415

    return new_home(tmp_path / "home")
