"""`rookery demo` (being built)."""

from __future__ import annotations


def demo() -> None:
    raise NotImplementedError
