"""Synthesize each stage once per test session (per xdist worker) and hand the assembly to the tests.

jsii starts the venv's Node (``stage.toolchain.use_venv_node``) for every test here: this conftest
runs before any module of ``tests/infra`` imports ``aws_cdk``. Tests that read a synthesized stage
carry ``pytest.mark.xdist_group("infra-synth")`` so one worker builds the three variants (dev, dev
with ``destroy_data``, prod) once.
"""

from __future__ import annotations

from stage.toolchain import use_venv_node

use_venv_node()  # before aws_cdk is imported: jsii must start the venv's Node

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from infra_testing import CliAudit, Synth, run_cli_audit, synth_stage  # noqa: E402


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


@pytest.fixture(scope="session")
def dev_cli_audit(tmp_path_factory: pytest.TempPathFactory) -> CliAudit:
    """The real front door end to end (cdk CLI synth, gate, cfn-lint, report files), once per session:
    tests that read it carry ``pytest.mark.xdist_group("infra-audit-cli")``."""
    return run_cli_audit("dev", tmp_path_factory.mktemp("cli-audit"))
