"""Which container images the local engine can run, and the command line each entrypoint becomes.

The project image is ``containers/program`` (its ``/opt/program``) run with the image's own
interpreter (``.venv-image/bin/python``, installed from exactly ``containers/requirements.txt``), with
``contracts/`` on its path as the image has ``rookery_contracts`` inside ``/opt/program``.
``ContainerEntrypoint ["python3", "/opt/program/x.py"]`` runs ``<program_dir>/x.py``; a training
image without an entrypoint runs ``train`` and a hosting image ``serve``, as SageMaker does with
``docker run <image> train|serve``. Anything else is refused before a step starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from pipelines.contract import PROGRAM_DIR
from rookery_contracts.env import BASE_DIR_ENV
from stage.paths import CONTRACTS_DIR, IMAGE_PYTHON
from stage.paths import PROGRAM_DIR as REPO_PROGRAM_DIR

IMAGE_PYTHON_ENV: Final = "ROOKERY_IMAGE_PYTHON"
_PYTHONS: Final = ("python3", "python", "/usr/local/bin/python3", "/usr/local/bin/python", "/usr/bin/python3")


class ImageError(ValueError):
    """An image or entrypoint the map cannot run; the message says what can run instead."""


def default_image_python() -> Path:
    return Path(os.environ.get(IMAGE_PYTHON_ENV) or IMAGE_PYTHON)


@dataclass(frozen=True)
class Program:
    """One runnable image: its ``/opt/program`` folder on this machine and the interpreter."""

    program_dir: Path
    python: Path


@dataclass(frozen=True)
class ImageMap:
    """Image URI -> the program that stands in for it."""

    images: Mapping[str, Program] = field(default_factory=dict)

    @classmethod
    def project(
        cls, image_uri: str, *, program_dir: Path | None = None, python: Path | None = None
    ) -> ImageMap:
        """The project image at ``image_uri``, run from ``containers/program`` with the image interpreter."""
        return cls(
            {
                image_uri: Program(
                    program_dir=(program_dir or REPO_PROGRAM_DIR).resolve(),
                    python=python or default_image_python(),
                )
            }
        )

    def program(self, image_uri: object) -> Program:
        if not isinstance(image_uri, str) or image_uri not in self.images:
            known = ", ".join(sorted(self.images)) or "none"
            raise ImageError(
                f"image {image_uri!r} is not one the local engine can run (it runs: {known}); "
                "render the definition with the project image (PipelineResources.placeholders or the "
                "deployed image URI) and pass the same URI to ImageMap.project"
            )
        return self.images[image_uri]

    def command(self, image_uri: object, entrypoint: Sequence[object] | None, *, default: str) -> list[str]:
        """The argv for ``entrypoint`` (or the image's implicit ``default``: ``train`` / ``serve``)."""
        program = self.program(image_uri)
        if not entrypoint:
            script = program.program_dir / default
            if not script.is_file():
                raise ImageError(f"the image has no {default!r} entrypoint ({script} is missing)")
            return [str(program.python), str(script)]
        parts = [str(p) for p in entrypoint]
        if parts[0] in _PYTHONS and len(parts) >= 2:
            script_path, rest = parts[1], parts[2:]
        elif len(parts) >= 1 and parts[0].startswith(f"{PROGRAM_DIR}/"):
            script_path, rest = parts[0], parts[1:]
        else:
            raise ImageError(
                f"entrypoint {parts} cannot run locally; use ['python3', '{PROGRAM_DIR}/<script>.py'] "
                "or the image's own train/serve"
            )
        relative = PurePosixPath(script_path)
        if not relative.is_relative_to(PROGRAM_DIR) or ".." in relative.parts:
            raise ImageError(
                f"entrypoint script {script_path!r} is outside {PROGRAM_DIR}; the local engine runs only "
                "the project image's programs"
            )
        script = program.program_dir.joinpath(*relative.relative_to(PROGRAM_DIR).parts)
        if not script.is_file():
            raise ImageError(f"entrypoint script {script_path!r} does not exist in the image ({script})")
        return [str(program.python), str(script), *rest]

    def environment(self, image_uri: str, sandbox: Path, extra: Mapping[str, str]) -> dict[str, str]:
        """The container's environment: the image's own ENV (Dockerfile), then the job's variables.

        Nothing of the caller's environment leaks in except PATH, HOME and the locale, so a job
        behaves the same whoever starts it.
        """
        program = self.program(image_uri)
        env = {
            key: value
            for key, value in os.environ.items()
            if key in ("HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "TMPDIR")
        }
        env.update(
            {
                "PATH": os.pathsep.join([str(program.program_dir), os.environ.get("PATH", "/usr/bin:/bin")]),
                # The image's PYTHONPATH is /opt/program, which holds rookery_contracts too.
                "PYTHONPATH": os.pathsep.join([str(program.program_dir), str(CONTRACTS_DIR)]),
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": str(sandbox / "tmp" / "matplotlib"),
                BASE_DIR_ENV: str(sandbox),
            }
        )
        env.update(extra)
        return env
