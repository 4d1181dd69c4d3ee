"""Where the local engine keeps everything: one folder (default ``<repo>/.rookery``, git-ignored).

``s3://bucket/key`` lives at ``<root>/s3/bucket/key``; executions, the model registry, models and
endpoints have their own folders beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from emulators.core.errors import LocalEngineError
from stage.paths import LOCAL_HOME

HOME_ENV: Final = "ROOKERY_HOME"


def default_home_root() -> Path:
    """``$ROOKERY_HOME`` when set, else ``<repo>/.rookery``."""
    return Path(os.environ.get(HOME_ENV) or LOCAL_HOME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``; refuses other schemes and ``..`` segments."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise LocalEngineError(f"{uri!r} is not an s3:// URI; write it as s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or "/" in bucket or bucket in (".", ".."):
        raise LocalEngineError(f"{uri!r} has no bucket name; write it as s3://bucket/key")
    if any(part in (".", "..") for part in key.split("/")):
        raise LocalEngineError(f"{uri!r} has a '.' or '..' segment; S3 keys here must not climb folders")
    return bucket, key


@dataclass(frozen=True)
class LocalHome:
    """Everything the local engine writes, under ``root``."""

    root: Path

    @classmethod
    def default(cls) -> LocalHome:
        return cls(default_home_root())

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    def s3_path(self, uri: str) -> Path:
        """``s3://bucket/key`` -> ``<root>/s3/bucket/key``."""
        bucket, key = split_s3_uri(uri)
        return self.s3_root.joinpath(bucket, *[p for p in key.split("/") if p])

    def s3_uri(self, path: Path) -> str:
        """The inverse of :meth:`s3_path` (``path`` must lie under ``<root>/s3/<bucket>``)."""
        resolved = Path(os.path.abspath(path))
        base = Path(os.path.abspath(self.s3_root))
        if not resolved.is_relative_to(base) or resolved == base:
            raise LocalEngineError(f"{path} is not inside the local S3 folder {base}")
        parts = PurePosixPath(*resolved.relative_to(base).parts).parts
        return f"s3://{parts[0]}/" + "/".join(parts[1:])

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
