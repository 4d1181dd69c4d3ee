"""Session fixtures for the project-image tests: each dataset's real preprocess -> train -> evaluate run
(built once per test session, whichever xdist worker gets there first), and a real endpoint serving
the penguins model (one per worker). Tests that share them also share an xdist group.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_helpers import (
    LOANS_SCHEMA,
    PENGUINS_SCHEMA,
    Endpoint,
    PipelineRun,
    built_once,
    finished_pipeline,
    loan_records,
    run_pipeline,
    serving,
)

from rookery.demo.dataset import penguin_records

PENGUIN_HYPERPARAMETERS = {
    "num_round": 40,
    "max_depth": 4,
    "eta": 0.3,
    "eval_metric": "auc",
    "early_stopping_rounds": 15,
    "checkpoint_frequency": 10,
    "seed": 1,
}
LOAN_HYPERPARAMETERS = {
    "num_round": 60,
    "max_depth": 3,
    "eta": 0.2,
    "eval_metric": "logloss,auc",
    "subsample": 0.9,
    "scale_pos_weight": 4,
    "checkpoint_frequency": 25,
}


def _shared(factory: pytest.TempPathFactory) -> Path:
    """The temporary root every xdist worker shares (each worker's basetemp sits inside it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    with built_once(_shared(tmp_path_factory) / "image-runs", "penguins") as (root, done):
        if done:
            return finished_pipeline(root, PENGUINS_SCHEMA)
        return run_pipeline(
            root,
            PENGUINS_SCHEMA,
            penguin_records(),
            PENGUIN_HYPERPARAMETERS,
            operating_point="min_sensitivity:0.85",
        )


@pytest.fixture(scope="session")
def loans(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    with built_once(_shared(tmp_path_factory) / "image-runs", "loans") as (root, done):
        if done:
            return finished_pipeline(root, LOANS_SCHEMA)
        return run_pipeline(
            root,
            LOANS_SCHEMA,
            loan_records(),
            LOAN_HYPERPARAMETERS,
            operating_point="min_specificity:0.9",
            preprocess_args=("--split", "0.6,0.2,0.2", "--seed", "3", "--standardize", "true"),
        )


@pytest.fixture(scope="session")
def penguins_endpoint(penguins: PipelineRun) -> Iterator[Endpoint]:
    with serving(penguins.model_dir, workers=2) as endpoint:
        yield endpoint
