"""Session fixtures for the pipeline tests: each variant is rendered once per session.

Rendering imports the SageMaker SDK (seconds), so every module that uses a rendered definition
marks itself ``xdist_group("pipelines-render")`` and the renders happen once, on one worker.
Definitions are shared: a test that changes one works on ``copy.deepcopy`` of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from pipeline_testing import BUILTIN_REASON, REGION, render, stage_with

from pipelines import PipelineResources, PipelineSettings
from stage import Stage, load_stage


@pytest.fixture(scope="session")
def dev_stage() -> Stage:
    return load_stage("dev")


@pytest.fixture(scope="session")
def dev_resources(dev_stage: Stage) -> PipelineResources:
    return PipelineResources.placeholders(dev_stage)


@pytest.fixture(scope="session")
def train_settings(dev_stage: Stage, dev_resources: PipelineResources) -> PipelineSettings:
    return PipelineSettings.from_stage(dev_stage, dev_resources, tune=False)


@pytest.fixture(scope="session")
def tune_settings(dev_stage: Stage, dev_resources: PipelineResources) -> PipelineSettings:
    return PipelineSettings.from_stage(dev_stage, dev_resources, tune=True)


@pytest.fixture(scope="session")
def train_definition(train_settings: PipelineSettings) -> dict[str, Any]:
    return render(train_settings)


@pytest.fixture(scope="session")
def tune_definition(tune_settings: PipelineSettings) -> dict[str, Any]:
    return render(tune_settings)


def _render_builtin(*, tune: bool) -> dict[str, Any]:
    stage = stage_with(image="builtin-xgboost", image_exception_reason=BUILTIN_REASON)
    return render(PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage), tune=tune))


@pytest.fixture(scope="session")
def builtin_train_definition() -> dict[str, Any]:
    """Training on SageMaker's built-in XGBoost image, acknowledged with a written reason (T6)."""
    return _render_builtin(tune=False)


@pytest.fixture(scope="session")
def builtin_tune_definition() -> dict[str, Any]:
    """Tuning on SageMaker's built-in XGBoost image, acknowledged with a written reason (T6)."""
    return _render_builtin(tune=True)


@pytest.fixture(scope="session", params=["train", "tune"])
def builtin_definition(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Both variants on the built-in image."""
    return request.getfixturevalue(f"builtin_{request.param}_definition")


@pytest.fixture(scope="session", params=["train", "tune"])
def definition(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Both variants, for the assertions that hold for each."""
    return request.getfixturevalue(f"{request.param}_definition")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in process, test credentials, the dev stage's region and no AWS profile."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield
