"""`rookery audit` (being built)."""

from __future__ import annotations


def audit() -> None:
    raise NotImplementedError
