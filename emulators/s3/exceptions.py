"""The local S3's errors, over the emulators' shared base."""

from __future__ import annotations

from emulators.core.errors import LocalEngineError


class S3Error(LocalEngineError):
    """An S3 location the local S3 cannot map; the message names it and how to write it."""


class NoObjectsError(S3Error):
    """No object exists under ``uri`` (a prefix with nothing under it, or a missing object)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"no objects under {uri}")
