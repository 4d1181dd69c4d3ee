"""The Dockerfile and its staged build context, checked without Docker: it installs what the tests run,
what it copies exists, and the program it copies runs with nothing else on its path."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from image_helpers import CONTAINERS, IMAGE_PYTHON, PROGRAM, REPO

from infra.image_context import stage_build_context
from infra.staging import PackagingError

DOCKERFILE = CONTAINERS / "Dockerfile"
ENTRYPOINTS = (
    "train",
    "serve",
    "preprocess_profile.py",
    "preprocess_fit.py",
    "preprocess.py",
    "evaluate.py",
    "baseline.py",
    "monitor.py",
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def args_defaults() -> dict[str, str]:
    return dict(arg.split("=", 1) for kind, arg in instructions() if kind == "ARG" and "=" in arg)


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return dict(
        (m.group(1).lower(), m.group(2))
        for line in lines
        if (m := re.match(r"^([A-Za-z0-9_.-]+)==([^ \\;]+)", line))
    )


def test_base_image_is_slim_python_311() -> None:
    (base,) = [arg for kind, arg in instructions() if kind == "FROM"]
    image = args_defaults()[base.strip("${}")] if base.startswith("$") else base
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_a_non_root_user() -> None:
    users = [arg for kind, arg in instructions() if kind == "USER"]
    assert users, "the image must name a user"
    user = users[-1].split(":")[0]
    uid = args_defaults()[user.strip("${}")] if user.startswith("$") else user
    assert uid not in ("0", "root"), "the default user is not root"


def test_installs_exactly_the_locked_requirements_with_hashes() -> None:
    copies = [arg.split() for kind, arg in instructions() if kind == "COPY"]
    assert ["requirements.txt", "/tmp/requirements.txt"] in copies
    (install,) = [arg for kind, arg in instructions() if kind == "RUN" and "pip install" in arg]
    words = shlex.split(install.split("&&")[0])
    assert {"--require-hashes", "--no-deps"} <= set(words)
    assert words[words.index("-r") + 1] == "/tmp/requirements.txt"
    assert "--hash=sha256:" in (CONTAINERS / "requirements.txt").read_text()


def test_the_tests_run_the_interpreter_built_from_that_file() -> None:
    """.venv-image holds exactly requirements.txt's pins: the Dockerfile's requirements are the tests'."""
    site = next((REPO / ".venv-image" / "lib").glob("python3.*/site-packages"))
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in metadata.distributions(path=[str(site)])
    }
    locked = {re.sub(r"[-_.]+", "-", k): v for k, v in pins(CONTAINERS / "requirements.txt").items()}
    assert installed == locked
    version = subprocess.run([str(IMAGE_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert version.strip() == "(3, 11)"


def test_top_level_pins_are_one_fact() -> None:
    """requirements.in == pyproject's image group, and the lock resolves each of them to the same version."""
    top = pins(CONTAINERS / "requirements.in")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    group = dict(spec.lower().split("==") for spec in pyproject["dependency-groups"]["image"])
    assert top == group
    locked = pins(CONTAINERS / "requirements.txt")
    assert {name: locked[name] for name in top} == top
    assert "scikit-learn" not in locked, "xgboost imports scikit-learn when present and triples cold start"
    assert "pandas" not in locked, "no image module imports pandas: it would only add size and install time"


def test_every_entrypoint_exists_and_is_executable() -> None:
    copies = [arg.split() for kind, arg in instructions() if kind == "COPY"]
    assert ["program/", "/opt/program/"] in copies
    (chmod,) = [arg for kind, arg in instructions() if kind == "RUN" and arg.startswith("chmod")]
    named = [Path(w).name for w in chmod.split() if w.startswith("/opt/program/")]
    assert sorted(named) == sorted(ENTRYPOINTS)
    for name in ENTRYPOINTS:
        path = PROGRAM / name
        assert path.is_file() and path.stat().st_mode & 0o111, f"{name} must be executable"
        assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n"), name
    env = " ".join(arg for kind, arg in instructions() if kind == "ENV")
    assert 'PATH="/opt/program:${PATH}"' in env and "PYTHONPATH=/opt/program" in env
    assert ("WORKDIR", "/opt/program") in instructions()


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image") / "context"
    stage_build_context(out)
    return out


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_the_context_holds_what_the_dockerfile_copies_and_nothing_else(context: Path) -> None:
    sources = [arg.split()[-2] for kind, arg in instructions() if kind == "COPY"]
    assert sorted(p.name for p in context.iterdir()) == sorted(
        ["Dockerfile", *(s.rstrip("/") for s in sources)]
    )
    assert (context / "Dockerfile").read_bytes() == DOCKERFILE.read_bytes()
    program = sorted(
        p.relative_to(context / "program").as_posix() for p in (context / "program").rglob("*.py")
    )
    assert "rookery_contracts/schema.py" in program and "rookery_image/contract.py" in program
    assert not [p for p in context.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    assert {p.name for p in (context / "program").iterdir()} == {
        *ENTRYPOINTS,
        "rookery_image",
        "rookery_contracts",
    }


def test_staging_is_deterministic_and_refuses_an_existing_folder(context: Path, tmp_path: Path) -> None:
    stage_build_context(tmp_path / "again")
    assert _digest(tmp_path / "again") == _digest(context)
    with pytest.raises(PackagingError, match="exists; stage the image build context into a new folder"):
        stage_build_context(tmp_path / "again")


def test_the_program_runs_with_only_its_own_folder_on_the_path_and_serving_stays_lean(context: Path) -> None:
    """As in the image (PYTHONPATH=/opt/program): the staged program finds rookery_contracts itself.

    Serving imports neither pandas, scikit-learn nor matplotlib (each costs seconds of cold start).
    """
    probe = (
        "import sys, rookery_contracts.schema, rookery_image.server, rookery_image.model, "
        "rookery_image.preprocessing, xgboost; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'matplotlib') if m in sys.modules), "
        "sys.modules['rookery_contracts'].__file__.startswith(sys.argv[1]))"
    )
    program = context / "program"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(program)}
    result = subprocess.run(
        [str(IMAGE_PYTHON), "-c", probe, str(program)],
        cwd=program.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[] True"
