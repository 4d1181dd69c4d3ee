"""What each local execution keeps on disk, and removing the intermediate data of old ones.

An execution stores its job sandboxes (``executions/<id>/jobs``: the inputs each job was given and
what it wrote), its step outputs in the local S3 (``s3://<artifacts>/<pipeline>/<id>/``: splits,
evaluation, batch transform output, checkpoints) and its model archives
(``s3://<artifacts>/<pipeline>/models/pipelines-<id>-...``). Removing an execution's intermediate data
keeps its record and logs (``execution.json``, ``logs/``), so ``rookery local executions`` and
``describe`` still show it, and keeps every model archive a registered model package points at, so
the registry (and serving) is untouched.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from emulators.sagemaker.models import Execution, LocalRegistry, executions

JOBS_DIR = "jobs"


@dataclass(frozen=True)
class Stored:
    """The bytes an execution keeps, by kind (``registered`` model archives are never removed)."""

    execution_id: str
    jobs: int
    outputs: int
    models: int
    registered: int

    @property
    def removable(self) -> int:
        return self.jobs + self.outputs + self.models

    @property
    def total(self) -> int:
        return self.removable + self.registered


def _size(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


def _outputs(home: LocalHome, execution: Execution) -> list[Path]:
    """``<bucket>/<pipeline>/<id>`` folders in any local bucket."""
    root = home.s3_root
    if not root.is_dir():
        return []
    return [p for p in root.glob(f"*/{execution.pipeline_name}/{execution.id}") if p.is_dir()]


def _models(home: LocalHome, execution: Execution) -> list[Path]:
    """The execution's training jobs' folders under ``<bucket>/<pipeline>/models/``."""
    root = home.s3_root
    if not root.is_dir():
        return []
    return sorted(root.glob(f"*/{execution.pipeline_name}/models/pipelines-{execution.id}-*"))


def _registered(home: LocalHome) -> set[Path]:
    s3 = LocalS3(home)
    urls = (str(p.inference_spec.get("model_data_url") or "") for p in LocalRegistry(home).packages())
    return {s3.path(url) for url in urls if url.startswith("s3://")}


def _split_models(
    home: LocalHome, execution: Execution, registered: set[Path]
) -> tuple[list[Path], list[Path]]:
    """(removable, registered) model folders of the execution."""
    removable: list[Path] = []
    kept: list[Path] = []
    for folder in _models(home, execution):
        (kept if any(r.is_relative_to(folder) for r in registered) else removable).append(folder)
    return removable, kept


def stored(home: LocalHome, execution: Execution) -> Stored:
    """What ``execution`` keeps on disk now."""
    removable, kept = _split_models(home, execution, _registered(home))
    return Stored(
        execution_id=execution.id,
        jobs=_size([execution.path / JOBS_DIR]),
        outputs=_size(_outputs(home, execution)),
        models=_size(removable),
        registered=_size(kept),
    )


def remove_intermediate(home: LocalHome, *, keep: int) -> list[Stored]:
    """Remove the intermediate data of every execution but the ``keep`` newest; what was removed.

    Executions still running (no end time) are left alone.
    """
    if keep < 0:
        raise ValueError(f"keep must be 0 or more, not {keep}")
    registered = _registered(home)
    removed = []
    for execution in executions(home)[keep:]:
        if execution.ended_at is None:
            continue
        removable, _ = _split_models(home, execution, registered)
        folders = [execution.path / JOBS_DIR, *_outputs(home, execution), *removable]
        freed = stored(home, execution)
        if not any(f.exists() for f in folders):
            continue
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        removed.append(freed)
    return removed
