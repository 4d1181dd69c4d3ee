"""Files under the local home: written whole (a reader never sees half a file) and folders started empty."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A sibling of ``target`` to write; renamed over ``target`` when the block ends without error.

    The rename is atomic, so a reader (another process listing the folder, ``rookery local
    describe``) sees the old file or the new one, never a part.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_whole(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through :func:`replacing`."""
    with replacing(target) as tmp:
        tmp.write_bytes(data)
    return target


def fresh_dir(path: Path) -> Path:
    """``path`` as an empty folder (whatever was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
