"""What an execution leaves behind: ``<home>/executions/<id>/execution.json``, rewritten as it runs.

Status words are SageMaker's: an execution is ``Executing``, ``Succeeded`` or ``Failed``; a step
``Starting``, ``Executing``, ``Succeeded`` or ``Failed``. Steps that do not run are ``Skipped`` (on
the branch a Condition did not take, or depending on such a step) or ``NotExecuted`` (not started
because the execution had already failed); SageMaker lists neither, the local record keeps both so
a reader sees the whole graph.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emulators.core.files import write_whole

EXECUTION_FILE: Final = "execution.json"
FORMAT: Final = "rookery-local-execution/1"

TERMINAL_STEP: Final = ("Succeeded", "Failed", "Skipped", "NotExecuted")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


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
