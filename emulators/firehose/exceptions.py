"""The Firehose emulator's errors, over the emulators' shared base: each names what is wrong and the fix."""

from __future__ import annotations

from emulators.core.errors import LocalEngineError


class IngestionError(LocalEngineError):
    """Local delivery could not run (the function failed to start, answered out of contract, ...)."""


class DataFileError(LocalEngineError):
    """The --data file cannot be read for the stage's schema; the message names the problem and the fix."""
