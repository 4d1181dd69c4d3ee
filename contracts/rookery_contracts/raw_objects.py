"""Which objects below the dataset's raw-bucket prefix are training data.

Preprocess reads every other object under its raw input, and the trigger function starts the
pipeline only for a new object this rule lets through, so neither acts on data the other ignores.
"""

from __future__ import annotations

from typing import Final

# A folder of failed records anywhere below the dataset's prefix (Firehose's error output layout).
ERRORS_FOLDER: Final = "errors"
ERROR_OUTPUT: Final = "Firehose error output (failed records)"
HIDDEN: Final = "a hidden file or folder (its name starts with '.')"


def skip_reason(relative_key: str) -> str | None:
    """Why the object at ``relative_key`` (its key below the dataset's prefix, '/'-separated) is not
    training data, or None when Preprocess reads it."""
    parts = relative_key.split("/")
    if any(part.startswith(".") for part in parts):
        return HIDDEN
    if ERRORS_FOLDER in parts[:-1]:
        return ERROR_OUTPUT
    return None
