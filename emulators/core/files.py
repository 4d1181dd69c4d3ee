"""Files under the local home: written whole (a reader never sees half a file) and folders started empty.

A write the disk refuses (full, over quota, read-only, not permitted) is :class:`UnwritableError`:
one line naming the file and the fix, and the file is left as it was (no empty or partial file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from emulators.core.errors import UnwritableError
from emulators.core.home import HOME_ENV

_FULL: Final = (
    "free space on that disk, or use a home on another one (--home or $" + HOME_ENV + "), and run again"
)
_READ_ONLY: Final = "make it writable, or use a writable home (--home or $" + HOME_ENV + ")"
# The errors that say the disk will not take the write, and what to do about each.
REFUSALS: Final = {
    errno.ENOSPC: ("no space left on the device", _FULL),
    errno.EDQUOT: ("the disk quota is exceeded", _FULL),
    errno.EROFS: ("the file system is read-only", _READ_ONLY),
    errno.EACCES: ("permission denied", _READ_ONLY),
    errno.EPERM: ("operation not permitted", _READ_ONLY),
}


def unwritable(exc: BaseException, path: Path | None = None) -> UnwritableError | None:
    """``exc`` as :class:`UnwritableError` if it is the disk refusing a write (``path``, else the
    file the error names), else None."""
    if isinstance(exc, UnwritableError):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in REFUSALS:
        return None
    reason, fix = REFUSALS[exc.errno]
    return UnwritableError(path or Path(exc.filename or "a file under the local home"), reason, fix)


@contextlib.contextmanager
def refusals_named(path: Path) -> Iterator[None]:
    """Inside the block, the disk refusing a write is :class:`UnwritableError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        refused = unwritable(exc, path)
        if refused is None:
            raise
        raise refused from None


def check_writable(folder: Path) -> None:
    """:class:`UnwritableError` now, before anything is written, if ``folder`` cannot take a file."""
    probe = folder / f".rookery-write-check.{os.getpid()}"
    try:
        with refusals_named(folder):
            folder.mkdir(parents=True, exist_ok=True)
            _write(probe, b"")
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _write(path: Path, data: bytes) -> None:
    """The one place whole files reach the disk (the tests inject a full disk here)."""
    with path.open("wb") as handle:
        handle.write(data)


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A sibling of ``target`` to write; renamed over ``target`` when the block ends without error.

    The rename is atomic, so a reader (another process listing the folder, ``rookery local
    describe``) sees the old file or the new one, never a part; on any error the sibling is removed.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with refusals_named(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_whole(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through :func:`replacing`."""
    with replacing(target) as tmp:
        _write(tmp, data)
    return target


def fresh_dir(path: Path) -> Path:
    """``path`` as an empty folder (whatever was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
