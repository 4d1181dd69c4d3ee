"""How every ``rookery`` command reports an expected problem: one line on stderr and an exit code.

A traceback is for bugs; a bad stage, parameter, definition or AWS setup is the user's to fix, so
it is said once, plainly (``error: <the problem and the fix>``), with exit code 2 (usage, config,
AWS) unless the command documents another code for that error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Final, NoReturn

import typer
from rich.console import Console

from emulators.core.errors import LocalEngineError
from emulators.core.files import unwritable
from infra.audit.run import AuditError
from pipelines.aws import OperationError
from pipelines.parameters import ParameterError
from pipelines.settings import SettingsError
from pipelines.validate import DefinitionError
from stage import ConfigError

err = Console(stderr=True, highlight=False, emoji=False)

# The errors raised on purpose below the CLI, each with a message naming the problem and the fix.
EXPECTED: Final[tuple[type[Exception], ...]] = (
    ConfigError,
    SettingsError,
    ParameterError,
    DefinitionError,
    OperationError,
    LocalEngineError,
    AuditError,
)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def reported(codes: Mapping[type[Exception], int] | None = None) -> Iterator[None]:
    """Report an ``EXPECTED`` error with ``fail``: exit 2, or the code ``codes`` gives its type. The
    disk refusing a write (full, read-only) is expected too: said as ``UnwritableError``.

    Anything else propagates with its traceback.
    """

    def code_of(exc: Exception) -> int:
        return next((code for kind, code in (codes or {}).items() if isinstance(exc, kind)), 2)

    try:
        yield
    except EXPECTED as exc:
        fail(str(exc), code_of(exc))
    except OSError as exc:
        refused = unwritable(exc)
        if refused is None:
            raise
        fail(str(refused), code_of(refused))
