"""Fixtures for the local endpoint tests: one real trained model per session, a fresh home per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_testing import TrainedModel, shared_root, trained_model

from emulators.core.home import LocalHome


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    return trained_model(shared_root(tmp_path_factory) / "runtime-model")


@pytest.fixture
def home(tmp_path: Path) -> LocalHome:
    return LocalHome(tmp_path / "home")
