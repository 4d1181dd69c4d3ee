"""The SageMaker emulator's state under the local home: pipeline executions, the model registry, models.

- ``<home>/executions/<id>/execution.json``: one pipeline execution, rewritten as it runs. Status
  words are SageMaker's: an execution is ``Executing``, ``Succeeded``, ``Failed`` or ``Stopped``; a
  step ``Starting``, ``Executing``, ``Succeeded`` or ``Failed``. Steps that do not run are
  ``Skipped`` (on the branch a Condition did not take, or depending on such a step) or
  ``NotExecuted`` (not started because the execution had already failed); SageMaker lists neither,
  the local record keeps both so a reader sees the whole graph. ``process`` names the process
  running it (pid and start time): a record still ``Executing`` whose process is gone (killed, the
  machine stopped) is read as ``Failed``, interrupted, naming the step that was running. A record
  that cannot be read is reported as damaged, naming the file and the fix, never skipped silently.
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

from emulators.core import lifetime
from emulators.core.files import write_whole
from emulators.core.home import LocalHome
from emulators.sagemaker.exceptions import (
    DamagedExecutionError,
    ExecutionNotFoundError,
    RegistryError,
    StepFailedError,
)
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
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a time must be an ISO 8601 text, not {value!r:.40}")
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a text, not {value!r:.40}")
    return value


def _optional_text(raw: Mapping[str, Any], key: str) -> str | None:
    return None if raw.get(key) is None else _text(raw, key)


def _object(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object, not {value!r:.40}")
    return value


def _objects(raw: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{key} must be a list of objects")
    return value


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
        return cls(step=_text(raw, "step"), field=_text(raw, "field"), text=_text(raw, "note"))


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
    # Training: final_metrics, interruptions, resumed_from_round (several instances: hosts, host_logs);
    # tuning: trials, best; transform: batches.
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
        log_path, job_dir = _optional_text(raw, "log_path"), _optional_text(raw, "job_dir")
        return cls(
            name=_text(raw, "name"),
            type=_text(raw, "type"),
            status=_text(raw, "status"),
            started_at=_time(raw.get("started_at")),
            ended_at=_time(raw.get("ended_at")),
            failure_reason=_optional_text(raw, "failure_reason"),
            properties=_object(raw, "properties"),
            log_path=Path(log_path) if log_path else None,
            metrics=_object(raw, "metrics"),
            job_dir=Path(job_dir) if job_dir else None,
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
    # The process running the execution: {"pid", "start_time"} (lifetime.this_process()).
    process: dict[str, int | None] | None = None
    # Read as Failed because its process is gone while the record still said Executing.
    interrupted: bool = False

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
            "process": self.process,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path) -> Execution:
        """The record as :meth:`to_json` wrote it; ValueError, KeyError or TypeError if it is not."""
        if not isinstance(raw, dict):
            raise ValueError(f"the record must be a JSON object, not {type(raw).__name__}")
        started = _time(raw.get("started_at"))
        if started is None:
            raise ValueError("started_at is missing")
        return cls(
            id=_text(raw, "id"),
            arn=_optional_text(raw, "arn") or "",
            pipeline_name=_text(raw, "pipeline_name"),
            status=_text(raw, "status"),
            failure_reason=_optional_text(raw, "failure_reason"),
            failed_step=_optional_text(raw, "failed_step"),
            started_at=started,
            ended_at=_time(raw.get("ended_at")),
            parameters=_object(raw, "parameters"),
            steps=[StepRecord.from_json(s) for s in _objects(raw, "steps")],
            path=path,
            notes=[Note.from_json(n) for n in _objects(raw, "notes")],
            process=_process(raw.get("process")),
        )

    def save(self) -> None:
        """Write-then-rename: a reader (``rookery local describe``) never sees half a file."""
        write_whole(self.path / EXECUTION_FILE, json.dumps(self.to_json(), indent=2, default=str).encode())

    @classmethod
    def load(cls, folder: Path) -> Execution:
        """The execution in ``folder``: :class:`DamagedExecutionError` (file and fix named) when its
        record cannot be read; read as interrupted when its process is gone (see the module)."""
        path = folder / EXECUTION_FILE
        try:
            execution = cls.from_json(json.loads(path.read_bytes().decode("utf-8")), folder)
        except OSError as exc:
            raise DamagedExecutionError(path, f"cannot be read: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:200]
            raise DamagedExecutionError(path, problem or type(exc).__name__) from None
        execution._mark_if_interrupted()
        return execution

    def _mark_if_interrupted(self) -> None:
        """Executing, but the process that ran it is gone: Failed, interrupted at the running step."""
        if self.status != "Executing" or not self.process:
            return
        pid, started = self.process.get("pid"), self.process.get("start_time")
        if not isinstance(pid, int) or lifetime.alive(pid, started):
            return
        running = [s for s in self.steps if s.status in ("Starting", "Executing")]
        where = f"while step {', '.join(s.name for s in running)} was running" if running else "between steps"
        reason = (
            f"interrupted: the process that ran this execution (pid {pid}) ended {where} without "
            "recording an end (killed, or the machine stopped); run the pipeline again"
        )
        for step in running:
            step.status = "Failed"
            step.failure_reason = "interrupted: the execution's process ended while this step was running"
        self.status = "Failed"
        self.failure_reason = reason
        self.failed_step = running[0].name if running else None
        self.interrupted = True


def _process(value: Any) -> dict[str, int | None] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("pid"), int)
        or not isinstance(value.get("start_time"), int | None)
    ):
        raise ValueError("process must be {pid, start_time} numbers")
    return {"pid": value["pid"], "start_time": value.get("start_time")}


@dataclass(frozen=True)
class Listing:
    """The executions under a home, newest first, and the records that could not be read."""

    executions: list[Execution]
    damaged: list[DamagedExecutionError]


def listing(home: LocalHome) -> Listing:
    """Every execution under ``home`` (newest first) and every damaged record, by folder name."""
    folder = home.executions_dir
    if not folder.is_dir():
        return Listing([], [])
    found: list[Execution] = []
    damaged: list[DamagedExecutionError] = []
    for path in sorted(folder.iterdir()):
        if (path / EXECUTION_FILE).is_file():
            try:
                found.append(Execution.load(path))
            except DamagedExecutionError as exc:
                damaged.append(exc)
    return Listing(sorted(found, key=lambda e: e.started_at, reverse=True), damaged)


def executions(home: LocalHome) -> list[Execution]:
    """Every readable execution under ``home``, newest first (:func:`listing` names the damaged)."""
    return listing(home).executions


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
