"""Package a Lambda function without Docker: its folder, the contracts package and its pure-Python
dependencies.

Pure (no CDK): ``lambdas/<name>/`` becomes package ``<name>`` at the root of the bundle, next to
``rookery_contracts`` (from ``contracts/``, the only rookery code a function imports), and the
third-party distributions of pyproject's ``lambda`` dependency group (Powertools and what it
needs) are copied file by file from this venv, as pip installed them. Offline and
deterministic: the file set comes from each distribution's RECORD, bytecode and native
extensions are left out (the Lambda runtime is another Python; every dependency here has a
pure-Python fallback), and copies carry content only, so the asset hash depends on content.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Final

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.staging import PackagingError, copy_contracts, copy_file, copy_package
from stage.paths import CONTRACTS_DIR, LAMBDAS_DIR, PYPROJECT

# Distributions the Lambda Python runtime already ships (the AWS SDK); bundling them would
# only pin a second, older or newer copy. Everything else a function needs is bundled.
RUNTIME_PROVIDED: Final = frozenset(
    canonicalize_name(n) for n in ("boto3", "botocore", "s3transfer", "urllib3", "python-dateutil", "six")
)
_SKIP_SUFFIXES: Final = (".pyc", ".so", ".pyd")


def lambda_requirements(pyproject: Path = PYPROJECT) -> tuple[Requirement, ...]:
    """The pinned third-party requirements of every Lambda (pyproject's ``lambda`` group)."""
    groups = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("dependency-groups", {})
    if "lambda" not in groups:
        raise PackagingError(
            f"{pyproject} has no [dependency-groups] lambda; add the functions' dependencies there"
        )
    return tuple(Requirement(r) for r in groups["lambda"])


def resolve_distributions(requirements: Iterable[Requirement]) -> list[metadata.Distribution]:
    """The installed distributions the requirements need (transitively), minus what the runtime provides."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(r, frozenset(r.extras)) for r in requirements]
    while pending:
        req, extras = pending.pop()
        name = canonicalize_name(req.name)
        if name in RUNTIME_PROVIDED or name in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise PackagingError(f"{req.name} is not installed in this venv; run `make setup`") from None
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            raise PackagingError(
                f"{req.name} {dist.version} is installed but pyproject pins {req}; run `make setup`"
            )
        found[name] = dist
        for dep in (Requirement(d) for d in dist.requires or ()):
            wanted = dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in (extras or {""}))
            if wanted:
                pending.append((dep, frozenset(dep.extras)))
    return [found[n] for n in sorted(found)]


def _distribution_files(dist: metadata.Distribution) -> Iterator[tuple[Path, Path]]:
    """(source, relative target) for the importable files of one installed distribution."""
    for file in dist.files or ():
        parts = Path(file).parts
        if not parts or parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info")):
            continue
        if "__pycache__" in parts or file.name.endswith(_SKIP_SUFFIXES):
            continue
        yield Path(str(dist.locate_file(file))), Path(*parts)


def package_function(
    name: str, output_dir: Path, *, lambdas_dir: Path = LAMBDAS_DIR, contracts_dir: Path = CONTRACTS_DIR
) -> list[Path]:
    """Write the bundle of ``lambdas/<name>`` into ``output_dir``; return the files written (sorted)."""
    source = lambdas_dir / name
    if not (source / "__init__.py").is_file():
        raise PackagingError(f"{source} is not a Python package (no __init__.py); create lambdas/{name}/")
    written = copy_package(source, output_dir / name)
    written += copy_contracts(output_dir, contracts_dir=contracts_dir)
    for dist in resolve_distributions(lambda_requirements()):
        for src, rel in sorted(_distribution_files(dist), key=lambda pair: pair[1]):
            target = output_dir / rel
            if target.exists():
                raise PackagingError(f"{rel} is provided by two distributions; the bundle would be ambiguous")
            written.append(copy_file(src, target))
    return sorted(written)
