"""Synthesize each stage once per test session (per xdist worker) and hand the assembly to the tests.

Tests that read a synthesized stage carry ``pytest.mark.xdist_group("infra-synth")`` so one
worker builds the three variants (dev, dev with ``destroy_data``, prod) once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from infra_testing import Synth, synth_stage


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_stage(tmp_path_factory, "dev", destroy=False)


@pytest.fixture(scope="session")
def dev_destroy(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_stage(tmp_path_factory, "dev", destroy=True)


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_stage(tmp_path_factory, "prod", destroy=False)


@pytest.fixture(params=["dev", "prod"])
def synth(request: pytest.FixtureRequest) -> Iterator[Synth]:
    """Each shipped stage as deployed by default (no destroy flag)."""
    yield request.getfixturevalue(request.param)


@pytest.fixture(params=["dev", "dev_destroy", "prod"])
def any_synth(request: pytest.FixtureRequest) -> Iterator[Synth]:
    """Every synthesized variant, including dev with ``-c destroy_data=true``."""
    yield request.getfixturevalue(request.param)
