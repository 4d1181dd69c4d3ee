"""A Fail step: the execution fails with the step's resolved ErrorMessage as its reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from emulators.sagemaker.exceptions import StepFailedError


def run_fail(name: str, args: Mapping[str, Any]) -> NoReturn:
    message = args.get("ErrorMessage")
    raise StepFailedError(str(message) if message not in (None, "") else f"Fail step {name} was reached")
