"""How every ``rookery`` command reports an expected problem: one line on stderr and an exit code.

A traceback is for bugs; a bad stage, parameter or definition is the user's to fix, so it is said
once, plainly, with exit code 2 (usage/config) unless the caller picks another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def one_line_errors(*expected: type[Exception], code: int = 2) -> Iterator[None]:
    """Turn the ``expected`` exception types into ``fail(str(exc), code)``; anything else propagates."""
    try:
        yield
    except expected as exc:
        fail(str(exc), code)
