"""The error base every emulator's ``exceptions.py`` builds on."""

from __future__ import annotations

from pathlib import Path


class LocalEngineError(Exception):
    """Base of every error the local emulators raise on purpose: the message names the problem and the fix."""


class EndpointError(LocalEngineError):
    """A local endpoint could not start or be found; the message says why and what to do."""


class UnwritableError(LocalEngineError):
    """A file under the local home cannot be written: the disk is full, or the folder is read-only.

    ``path`` is what could not be written; the message says why and what to do, in one line.
    """

    def __init__(self, path: Path, reason: str, fix: str) -> None:
        self.path = path
        super().__init__(f"cannot write {path}: {reason}; {fix}")
