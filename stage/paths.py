"""Where things are in the repository: the one place that knows the checkout's layout."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
STAGES_DIR: Final = REPO_ROOT / "infra" / "stages"
CONTAINERS_DIR: Final = REPO_ROOT / "containers"
PROGRAM_DIR: Final = CONTAINERS_DIR / "program"
LAMBDAS_DIR: Final = REPO_ROOT / "lambdas"
CONTRACTS_DIR: Final = REPO_ROOT / "contracts"
PYPROJECT: Final = REPO_ROOT / "pyproject.toml"
CDK_JSON: Final = REPO_ROOT / "cdk.json"
CDK_CONTEXT_JSON: Final = REPO_ROOT / "cdk.context.json"
NODE_MODULES: Final = REPO_ROOT / "node_modules"
# The project image's own interpreter (exactly containers/requirements.txt).
IMAGE_PYTHON: Final = REPO_ROOT / ".venv-image" / "bin" / "python"
# Where local state lives by default (git-ignored): the local S3, executions, registry, endpoints.
LOCAL_HOME: Final = REPO_ROOT / ".rookery"
