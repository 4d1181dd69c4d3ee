"""Stage the project image's Docker build context without Docker: what ``containers/Dockerfile`` copies.

Pure (no CDK), like :mod:`infra.lambda_package`. The context holds ``Dockerfile`` and
``requirements.txt`` from ``containers/``, the program (``containers/program``, the image's
``/opt/program``) and ``rookery_contracts`` from ``contracts/`` inside it
(``program/rookery_contracts``), so the image's ``PYTHONPATH=/opt/program`` finds both packages.
Nothing else enters (:mod:`infra.staging`: source files only, content only), so the asset hash
depends on content alone. ``python -m infra.image_context DIR`` stages it for a manual
``docker build DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from infra.staging import PackagingError, copy_contracts, copy_file, copy_tree
from stage.paths import CONTAINERS_DIR, CONTRACTS_DIR

CONTEXT_FILES: Final = ("Dockerfile", "requirements.txt")
PROGRAM: Final = "program"


def stage_build_context(
    output_dir: Path, *, containers_dir: Path = CONTAINERS_DIR, contracts_dir: Path = CONTRACTS_DIR
) -> list[Path]:
    """Write the build context into ``output_dir`` (which must not exist yet); return the files (sorted)."""
    if output_dir.exists():
        raise PackagingError(f"{output_dir} exists; stage the image build context into a new folder")
    missing = [n for n in (*CONTEXT_FILES, PROGRAM) if not (containers_dir / n).exists()]
    if missing:
        raise PackagingError(f"{containers_dir} lacks {missing}; the project image cannot be built")
    written = [copy_file(containers_dir / name, output_dir / name) for name in CONTEXT_FILES]
    written += copy_tree(containers_dir / PROGRAM, output_dir / PROGRAM)
    written += copy_contracts(output_dir / PROGRAM, contracts_dir=contracts_dir)
    return sorted(written)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m infra.image_context DIR  (then: docker build DIR)")
    files = stage_build_context(Path(sys.argv[1]))
    print(f"staged {len(files)} files into {sys.argv[1]}")
