"""The SageMaker emulator's state under the local home: pipeline executions, the model registry, models.

- ``<home>/executions/<id>/execution.json``: one pipeline execution, rewritten as it runs. Status
  words are SageMaker's: an execution is ``Executing``, ``Succeeded``, ``Failed`` or ``Stopped``; a
  step ``Starting``, ``Executing``, ``Succeeded`` or ``Failed``. Steps that do not run are
  ``Skipped`` (on the branch a Condition did not take, or depending on such a step) or
  ``NotExecuted`` (not started because the execution had already failed); SageMaker lists neither,
  the local record keeps both so a reader sees the whole graph.
- ``<home>/registry/<group>/<version>.json``: model package groups and their versions (counted
  from 1 per group, as SageMaker's are), in ``DescribeModelPackage``'s shape, with the approval
  status, the resolved inference specification and the metrics loaded from the version's
  ModelMetrics (``evaluation.json``). ``approve`` is what a reviewer does in Studio.
- ``<home>/models/<name>.json``: models created by Model steps (their resolved PrimaryContainer),
  which Transform steps and endpoints serve from.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emulators.core.files import write_whole
from emulators.core.home import LocalHome
from emulators.sagemaker.exceptions import ExecutionNotFoundError, RegistryError, StepFailedError
from emulators.sagemaker.responses import (
    APPROVAL_STATUSES,
    describe_model_package,
    model_package_arn,
    package_reference,
)

EXECUTION_FILE: Final = "execution.json"
FORMAT: Final = "rookery-local-execution/1"


def now() -> dt.datetime:
    """Timestamps are UTC, as SageMaker's are."""
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


# --- Pipeline executions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """Something the definition asks for that a local run does differently, said where a reader looks.

    ``step`` is ``"(pipeline)"`` for the definition's top level; ``field`` the key (``CacheConfig``).
    Recorded in execution.json (``notes``), at the top of the step's log, and in its first event.
    """

    step: str
    field: str
    text: str

    def __str__(self) -> str:
        return f"{self.field}: {self.text}"

    def to_json(self) -> dict[str, str]:
        return {"step": self.step, "field": self.field, "note": self.text}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Note:
        return cls(step=str(raw["step"]), field=str(raw["field"]), text=str(raw["note"]))


@dataclass
class StepEvent:
    """One change of a step, as ``LocalEngine.run(on_event=...)`` reports it."""

    execution_id: str
    step_name: str
    step_type: str
    status: str
    message: str | None = None


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Pending"
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    failure_reason: str | None = None
    # The SageMaker-shaped properties other steps may Get (Describe* response of the step's job).
    properties: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None
    # Training: final_metrics, interruptions, resumed_from_round; tuning: trials, best; transform: batches.
    metrics: dict[str, Any] = field(default_factory=dict)
    job_dir: Path | None = None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "seconds": self.seconds,
            "failure_reason": self.failure_reason,
            "properties": self.properties,
            "log_path": str(self.log_path) if self.log_path else None,
            "metrics": self.metrics,
            "job_dir": str(self.job_dir) if self.job_dir else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StepRecord:
        return cls(
            name=raw["name"],
            type=raw["type"],
            status=raw["status"],
            started_at=_time(raw.get("started_at")),
            ended_at=_time(raw.get("ended_at")),
            failure_reason=raw.get("failure_reason"),
            properties=dict(raw.get("properties") or {}),
            log_path=Path(raw["log_path"]) if raw.get("log_path") else None,
            metrics=dict(raw.get("metrics") or {}),
            job_dir=Path(raw["job_dir"]) if raw.get("job_dir") else None,
        )


@dataclass
class Execution:
    id: str
    pipeline_name: str
    status: str
    failure_reason: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    parameters: dict[str, Any]
    steps: list[StepRecord]
    path: Path
    arn: str = ""
    failed_step: str | None = None
    # What the definition asks for that this local run does differently (see Note).
    notes: list[Note] = field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(f"execution {self.id} has no step {name!r}; steps: {[s.name for s in self.steps]}")

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "arn": self.arn,
            "pipeline_name": self.pipeline_name,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "failed_step": self.failed_step,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "seconds": self.seconds,
            "parameters": self.parameters,
            "notes": [n.to_json() for n in self.notes],
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path) -> Execution:
        started = _time(raw.get("started_at"))
        assert started is not None
        return cls(
            id=raw["id"],
            arn=raw.get("arn", ""),
            pipeline_name=raw["pipeline_name"],
            status=raw["status"],
            failure_reason=raw.get("failure_reason"),
            failed_step=raw.get("failed_step"),
            started_at=started,
            ended_at=_time(raw.get("ended_at")),
            parameters=dict(raw.get("parameters") or {}),
            steps=[StepRecord.from_json(s) for s in raw.get("steps", [])],
            path=path,
            notes=[Note.from_json(n) for n in raw.get("notes", [])],
        )

    def save(self) -> None:
        """Write-then-rename: a reader (``rookery local describe``) never sees half a file."""
        write_whole(self.path / EXECUTION_FILE, json.dumps(self.to_json(), indent=2, default=str).encode())

    @classmethod
    def load(cls, folder: Path) -> Execution:
        raw = json.loads((folder / EXECUTION_FILE).read_text(encoding="utf-8"))
        return cls.from_json(raw, folder)


def executions(home: LocalHome) -> list[Execution]:
    """Every execution under ``home``, newest first."""
    folder = home.executions_dir
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if (path / EXECUTION_FILE).is_file():
            try:
                found.append(Execution.load(path))
            except (OSError, ValueError, KeyError):
                continue  # a folder being written or damaged: not an execution to list
    return sorted(found, key=lambda e: e.started_at, reverse=True)


def execution(home: LocalHome, execution_id: str) -> Execution:
    """The execution ``execution_id`` under ``home``; :class:`ExecutionNotFoundError` naming recent ones."""
    path = home.executions_dir / execution_id
    if not re.fullmatch(r"[a-z0-9]{1,64}", execution_id) or not (path / EXECUTION_FILE).is_file():
        known = ", ".join(e.id for e in executions(home)[:5]) or "none yet"
        raise ExecutionNotFoundError(
            f"no execution {execution_id!r} under {home.executions_dir}; recent: {known}"
        )
    return Execution.load(path)


# --- The model registry -------------------------------------------------------------------------


@dataclass
class ModelPackage:
    group: str
    version: int
    arn: str
    approval_status: str
    created_at: dt.datetime
    # evaluation.json as loaded from the package's ModelMetrics (ModelQuality.Statistics).
    metrics: dict[str, Any]
    # Resolved: image, model_data_url, environment, content_types, response_types.
    inference_spec: dict[str, Any]
    execution_id: str | None
    approval_description: str | None = None
    model_metrics: dict[str, Any] = field(default_factory=dict)  # the ModelMetrics URIs as registered
    # The monitoring baseline's URIs as registered (statistics and constraints per kind of monitoring).
    drift_check_baselines: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.group}/{self.version}"

    @classmethod
    def from_description(cls, raw: Mapping[str, Any], path: Path) -> ModelPackage:
        """The version as :func:`describe_model_package` wrote it."""
        return cls(
            group=raw["ModelPackageGroupName"],
            version=int(raw["ModelPackageVersion"]),
            arn=raw["ModelPackageArn"],
            approval_status=raw["ModelApprovalStatus"],
            approval_description=raw.get("ApprovalDescription"),
            created_at=dt.datetime.fromisoformat(raw["CreationTime"]),
            execution_id=raw.get("ExecutionId"),
            inference_spec=dict(raw.get("InferenceSpec") or {}),
            model_metrics=dict(raw.get("ModelMetrics") or {}),
            drift_check_baselines=dict(raw.get("DriftCheckBaselines") or {}),
            metrics=dict(raw.get("Metrics") or {}),
            path=path,
        )


class LocalRegistry:
    """Model package groups and their versions, under ``<home>/registry``."""

    def __init__(self, home: LocalHome) -> None:
        self.home = home
        self.root = home.registry_dir

    def packages(self, group: str | None = None) -> list[ModelPackage]:
        if not self.root.is_dir():
            return []
        groups = [self.root / group] if group else sorted(p for p in self.root.iterdir() if p.is_dir())
        found = []
        for folder in groups:
            for path in folder.glob("*.json"):
                if path.stem.isdigit():
                    found.append(self._read(path))
        return sorted(found, key=lambda p: (p.group, p.version))

    def get(self, ref: str) -> ModelPackage:
        """``<group>/<version>`` or the package ARN."""
        group, version = self._parse(ref)
        path = self.root / group / f"{version}.json"
        if not path.is_file():
            known = ", ".join(p.ref for p in self.packages()) or "none yet (run the pipeline first)"
            raise RegistryError(f"no model package {ref!r} in the local registry; known: {known}")
        return self._read(path)

    def approve(self, ref: str, *, description: str | None = None) -> ModelPackage:
        return self.set_status(ref, "Approved", description=description)

    def set_status(self, ref: str, status: str, *, description: str | None = None) -> ModelPackage:
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
        package = self.get(ref)
        with self._locked(package.group):
            package.approval_status = status
            if description is not None:
                package.approval_description = description
            self._write(package)
        return package

    def latest_approved(self, group: str) -> ModelPackage:
        approved = [p for p in self.packages(group) if p.approval_status == "Approved"]
        if not approved:
            pending = [p.ref for p in self.packages(group)]
            hint = (
                f"approve one with `rookery local approve {pending[-1]}`"
                if pending
                else "run the pipeline first (`rookery local run`), then approve the registered version"
            )
            raise RegistryError(
                f"model package group {group!r} has no Approved version "
                f"(versions: {', '.join(pending) or 'none'}); {hint}"
            )
        return approved[-1]

    def create(
        self,
        group: str,
        *,
        region: str,
        account: str,
        approval_status: str,
        inference_spec: dict[str, Any],
        model_metrics: dict[str, Any],
        metrics: dict[str, Any],
        execution_id: str | None,
        description: str | None = None,
        drift_check_baselines: dict[str, Any] | None = None,
    ) -> ModelPackage:
        """A new version of ``group`` (the next number; safe when runs register at once)."""
        if approval_status not in APPROVAL_STATUSES:
            raise RegistryError(
                f"ModelApprovalStatus {approval_status!r} is not one of {', '.join(APPROVAL_STATUSES)}"
            )
        if not re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}", group):
            raise RegistryError(f"model package group name {group!r} must be letters, digits and hyphens")
        with self._locked(group):
            versions = [int(p.stem) for p in (self.root / group).glob("*.json") if p.stem.isdigit()]
            version = max(versions, default=0) + 1
            package = ModelPackage(
                group=group,
                version=version,
                arn=model_package_arn(region, account, group, version),
                approval_status=approval_status,
                approval_description=description,
                created_at=now(),
                metrics=metrics,
                inference_spec=inference_spec,
                model_metrics=model_metrics,
                drift_check_baselines=dict(drift_check_baselines or {}),
                execution_id=execution_id,
                path=self.root / group / f"{version}.json",
            )
            self._write(package)
        return package

    def _parse(self, ref: str) -> tuple[str, int]:
        reference = package_reference(ref)
        if not reference.from_arn:
            return reference.group, reference.version
        # ARNs carry the group name in lower case; find the group as it was created.
        names = [p.name for p in self.root.iterdir()] if self.root.is_dir() else []
        group = next((n for n in names if n.lower() == reference.group), reference.group)
        return group, reference.version

    def _read(self, path: Path) -> ModelPackage:
        try:
            return ModelPackage.from_description(json.loads(path.read_text(encoding="utf-8")), path)
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(
                f"cannot read model package {path}: {exc}; delete or repair the file"
            ) from None

    def _write(self, package: ModelPackage) -> None:
        target = self.root / package.group / f"{package.version}.json"
        package.path = write_whole(target, json.dumps(describe_model_package(package), indent=2).encode())

    @contextlib.contextmanager
    def _locked(self, group: str) -> Iterator[None]:
        folder = self.root / group
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# --- Models -------------------------------------------------------------------------------------


def save_model(home: LocalHome, name: str, record: dict[str, Any]) -> None:
    """Keep a model as ``DescribeModel`` answers for it (plus the execution that created it)."""
    write_whole(home.models_dir / f"{name}.json", json.dumps(record, indent=2, default=str).encode())


def load_model(home: LocalHome, name: str) -> dict[str, Any]:
    """The model ``name``; a step that names a model nobody created fails as it would on SageMaker."""
    path = home.models_dir / f"{name}.json"
    if not path.is_file():
        raise StepFailedError(f"ValidationException: Could not find model {name!r} (no {path})")
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record
