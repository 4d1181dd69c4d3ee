"""Content-only copies for what synth stages for shipping: the Lambda bundles and the image build context.

Only source files are copied (no bytecode, caches, hidden files or ``tests/``), each with its content
alone (no timestamps or modes), so an asset's hash depends on content.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from stage.paths import CONTRACTS_DIR

# The one package of the repository that the image and the Lambdas ship besides their own.
CONTRACTS_PACKAGE: Final = "rookery_contracts"


class PackagingError(RuntimeError):
    """An artifact cannot be staged; the message says what is missing and how to fix it."""


def copy_file(src: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)  # content only: no timestamps or modes leak into the asset
    return target


def copy_tree(source: Path, target: Path) -> list[Path]:
    """Copy the source files under ``source`` to ``target``; return the files written (sorted)."""
    written = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        skipped = any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or rel.parts[0] == "tests"
        if path.is_dir() or skipped or path.suffix == ".pyc":
            continue
        written.append(copy_file(path, target / rel))
    return written


def copy_package(source: Path, target: Path) -> list[Path]:
    """:func:`copy_tree` of a Python package (a folder with ``__init__.py``)."""
    if not (source / "__init__.py").is_file():
        raise PackagingError(f"{source} is not a Python package (no __init__.py); restore it from git")
    return copy_tree(source, target)


def copy_contracts(into: Path, *, contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """``contracts/rookery_contracts`` as the package folder ``into/rookery_contracts``."""
    return copy_package(contracts_dir / CONTRACTS_PACKAGE, into / CONTRACTS_PACKAGE)
