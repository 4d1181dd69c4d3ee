"""Where the local emulators keep everything: one folder (default ``<repo>/.rookery``, git-ignored).

Each service has its folder in it: the local S3's buckets, the pipeline executions, the model
registry, models, endpoints, and a cache of rendered definitions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stage.paths import LOCAL_HOME

HOME_ENV: Final = "ROOKERY_HOME"


def default_home_root() -> Path:
    """``$ROOKERY_HOME`` when set, else ``<repo>/.rookery``."""
    return Path(os.environ.get(HOME_ENV) or LOCAL_HOME)


@dataclass(frozen=True)
class LocalHome:
    """Everything the local emulators write, under ``root``."""

    root: Path

    @classmethod
    def default(cls) -> LocalHome:
        return cls(default_home_root())

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    @property
    def executions_dir(self) -> Path:
        return self.root / "executions"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def endpoints_dir(self) -> Path:
        return self.root / "endpoints"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"
