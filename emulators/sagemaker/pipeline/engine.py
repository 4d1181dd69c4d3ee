"""The local engine: runs a rendered SageMaker pipeline definition on this machine.

``LocalEngine.run`` checks the whole definition first (nothing runs when anything is refused),
resolves the parameters, then runs the steps in dependency order (``DependsOn``, the step
properties and property files each step reads, and the Condition whose branch holds it), up to
``max_parallel`` job processes at once. A Condition runs only the branch its conditions select
(all of its conditions ANDed); the other branch is ``Skipped``. A failed step - or a Fail step -
fails the execution with that step's reason, and no further step starts. What the definition asks
for that runs differently here (step caching, lineage records) is noted in execution.json
(``notes``), in the step's log and in the step's first event: accepted, never silently.
"""

from __future__ import annotations

import json
import os
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Final

from emulators.core.errors import LocalEngineError
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker import models
from emulators.sagemaker.checks import check_definition, check_resolved
from emulators.sagemaker.exceptions import StepFailedError, UnsupportedDefinition
from emulators.sagemaker.models import Execution, Note, StepEvent, StepRecord, now
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.pipeline.expressions import ExpressionError, Scope, lookup
from emulators.sagemaker.pipeline.parameters import resolve_parameters
from emulators.sagemaker.responses import arn, job_name, random_id
from emulators.sagemaker.steps.condition import run_condition
from emulators.sagemaker.steps.fail import run_fail
from emulators.sagemaker.steps.model import run_model
from emulators.sagemaker.steps.processing import run_processing
from emulators.sagemaker.steps.register import run_register
from emulators.sagemaker.steps.spot import InterruptPlan
from emulators.sagemaker.steps.training import run_training
from emulators.sagemaker.steps.transform import run_transform
from emulators.sagemaker.steps.tuning import run_tuning
from pipelines.definition import own_arguments, steps_by_name, walk
from pipelines.reading.graph import dependencies
from pipelines.reading.variables import EXECUTION_VARIABLES
from stage.names import PRIVATE_ECR_IMAGE

DEFAULT_PIPELINE_NAME: Final = "rookery-local-pipeline"
_JOB_STEPS: Final = ("Processing", "Training", "Tuning", "Transform")
_ARN: Final = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):(\d{12}):")

Runner = Callable[[StepContext], StepResult]
_RUNNERS: Final[dict[str, Runner]] = {
    "Processing": run_processing,
    "Training": run_training,
    "Tuning": run_tuning,
    "Model": run_model,
    "RegisterModel": run_register,
    "Transform": run_transform,
}


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def account_and_region(definition: Mapping[str, Any]) -> tuple[str, str]:
    """The account and region the definition's resources name (for ARNs), placeholders if none."""
    for _, value in walk(definition):
        image = PRIVATE_ECR_IMAGE.match(value) if isinstance(value, str) else None
        if image:
            return image["account"], image["region"]
    match = _ARN.search(json.dumps(definition))
    if match:
        return match.group(2), match.group(1)
    return "000000000000", "us-east-1"


class LocalEngine:
    """Runs pipeline definitions with the images of ``images``, keeping everything under ``home``."""

    def __init__(self, home: LocalHome, images: ImageMap, *, max_parallel: int | None = None) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.home = home
        self.images = images
        self.max_parallel = max_parallel or usable_cpus()

    def check(self, definition: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> list[Note]:
        """Raise ``UnsupportedDefinition`` (step and field named) or ``ParameterError``; run nothing.

        Returns the notes a run would record: what the definition asks for that runs differently
        locally (step caching, where SageMaker records lineage).
        """
        return check_definition(definition, self.images, resolve_parameters(definition, parameters))

    def run(
        self,
        definition: Mapping[str, Any],
        *,
        parameters: Mapping[str, str | int | float] | None = None,
        on_event: Callable[[StepEvent], None] | None = None,
        interrupt_training: InterruptPlan | None = None,
        pipeline_name: str | None = None,
    ) -> Execution:
        """Check, then execute; returns the finished execution (also on failure: see ``status``)."""
        resolved = resolve_parameters(definition, parameters)
        notes = check_definition(definition, self.images, resolved)
        if interrupt_training is not None:
            _check_interruptible(definition, interrupt_training)
        run = _Run(
            self,
            definition,
            resolved,
            on_event=on_event,
            interrupt=interrupt_training,
            pipeline_name=pipeline_name or DEFAULT_PIPELINE_NAME,
            notes=notes,
        )
        return run.execute()

    def executions(self) -> list[Execution]:
        """Every execution under the home, newest first."""
        return models.executions(self.home)

    def execution(self, execution_id: str) -> Execution:
        """One execution by id; ``ExecutionNotFoundError`` names the recent ones."""
        return models.execution(self.home, execution_id)


def _check_interruptible(definition: Mapping[str, Any], plan: InterruptPlan) -> None:
    candidates = []
    for name, step in steps_by_name(definition).items():
        args = step.get("Arguments") or {}
        spec = args.get("TrainingJobDefinition", args) if step.get("Type") == "Tuning" else args
        if step.get("Type") in ("Training", "Tuning") and spec.get("EnableManagedSpotTraining"):
            candidates.append(name)
    if not [c for c in candidates if plan.applies_to(c)]:
        raise LocalEngineError(
            f"interrupt_training names step {plan.step!r}, but the spot training steps are {candidates}; "
            "SageMaker interrupts only managed spot training (EnableManagedSpotTraining)"
            if plan.step
            else "interrupt_training: no training step uses managed spot training "
            "(EnableManagedSpotTraining), and only spot jobs are interrupted"
        )


class _Run:
    """One execution: the scheduler and the state it keeps."""

    def __init__(
        self,
        engine: LocalEngine,
        definition: Mapping[str, Any],
        parameters: dict[str, Any],
        *,
        on_event: Callable[[StepEvent], None] | None,
        interrupt: InterruptPlan | None,
        pipeline_name: str,
        notes: list[Note],
    ) -> None:
        self.engine = engine
        self.home = engine.home
        self.definition = definition
        self.steps = steps_by_name(definition)
        self.graph = dependencies(definition)
        self.branch: dict[str, tuple[str, bool]] = {}
        for name, step in self.steps.items():
            if step.get("Type") == "Condition":
                for child in (step.get("Arguments") or {}).get("IfSteps", []):
                    self.branch[str(child["Name"])] = (name, True)
                for child in (step.get("Arguments") or {}).get("ElseSteps", []):
                    self.branch[str(child["Name"])] = (name, False)
        self.on_event = on_event
        self.interrupt = interrupt
        self.account, self.region = account_and_region(definition)
        self.id = self._new_id()
        self.folder = self.home.executions_dir / self.id
        self.log_dir = self.folder / "logs"
        self.jobs_dir = self.folder / "jobs"
        self.lock = threading.RLock()
        self.event_lock = threading.Lock()
        self.cancel = threading.Event()
        self.slots = threading.BoundedSemaphore(engine.max_parallel)
        self.results: dict[str, StepResult] = {}
        self.outcomes: dict[str, bool] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        started = now()
        pipeline_arn = arn(self.region, self.account, "pipeline", pipeline_name)
        self.execution = Execution(
            id=self.id,
            arn=f"{pipeline_arn}/execution/{self.id}",
            pipeline_name=pipeline_name,
            status="Executing",
            failure_reason=None,
            started_at=started,
            ended_at=None,
            parameters=parameters,
            steps=[StepRecord(name=n, type=str(s.get("Type"))) for n, s in self.steps.items()],
            path=self.folder,
            notes=list(notes),
        )
        self.variables = {
            "PipelineExecutionId": self.id,
            "PipelineExecutionArn": self.execution.arn,
            "PipelineName": pipeline_name,
            "PipelineArn": pipeline_arn,
            "StartDateTime": started.isoformat(),
        }
        self.parameters = parameters

    def _new_id(self) -> str:
        while True:
            candidate = random_id(12)
            if not (self.home.executions_dir / candidate).exists():
                return candidate

    # -- records and events ------------------------------------------------------------------------
    def record(self, name: str) -> StepRecord:
        return self.execution.step(name)

    def save(self) -> None:
        with self.lock:
            self.execution.save()

    def event(self, name: str, status: str, message: str | None = None) -> None:
        if self.on_event is None:
            return
        step_type = str(self.steps[name].get("Type"))
        with self.event_lock:
            try:
                self.on_event(StepEvent(self.id, name, step_type, status, message))
            except Exception:  # a progress display must never break an execution; keep its trace
                with (self.folder / "engine.log").open("a", encoding="utf-8") as log:
                    log.write(traceback.format_exc())

    def set_status(
        self, name: str, status: str, *, reason: str | None = None, message: str | None = None
    ) -> None:
        with self.lock:
            record = self.record(name)
            record.status = status
            if status in ("Starting", "Executing") and record.started_at is None:
                record.started_at = now()
            if status in ("Succeeded", "Failed", "Stopped"):
                record.ended_at = now()
            if reason is not None:
                record.failure_reason = reason
            self.save()
        self.event(name, status, message or reason)

    # -- the scheduler ----------------------------------------------------------------------------
    def execute(self) -> Execution:
        self.folder.mkdir(parents=True)
        self.log_dir.mkdir()
        self.jobs_dir.mkdir()
        (self.folder / "definition.json").write_text(json.dumps(self.definition, indent=2), encoding="utf-8")
        self.save()
        pending = set(self.steps)
        running: dict[Future[StepResult], str] = {}
        failed: str | None = None
        with ThreadPoolExecutor(max_workers=max(len(self.steps), 1), thread_name_prefix="step") as pool:
            try:
                while pending or running:
                    self._skip_unreachable(pending)
                    if failed is None and not self.cancel.is_set():
                        ready = sorted(
                            n
                            for n in pending
                            if all(self.record(d).status == "Succeeded" for d in self.graph[n])
                        )
                        for name in ready:
                            pending.discard(name)
                            self.set_status(name, "Starting", message=self._notes_of(name))
                            running[pool.submit(self._step, name)] = name
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = running.pop(future)
                        if not self._finish(name, future) and failed is None:
                            failed = name
            except KeyboardInterrupt:
                self.cancel.set()
                for future in list(running):
                    name = running.pop(future)
                    self._finish(name, future, stopped=True)
                self._close(pending, "Stopped", "the execution was stopped (Ctrl-C)", None)
                raise
        if failed is not None:
            self._close(pending, "Failed", self.record(failed).failure_reason, failed)
        else:
            self._close(pending, "Succeeded", None, None)
        return self.execution

    def _notes_of(self, name: str) -> str | None:
        """The step's notes in one line, shown with its first event (a progress display's first look)."""
        notes = [f"note: {n}" for n in self.execution.notes if n.step == name]
        return "; ".join(notes) or None

    def _close(self, pending: set[str], status: str, reason: str | None, failed: str | None) -> None:
        for name in sorted(pending):
            self.set_status(name, "NotExecuted", message="not started: the execution had failed")
        with self.lock:
            self.execution.status = status
            self.execution.failure_reason = reason
            self.execution.failed_step = failed
            self.execution.ended_at = now()
            self.save()

    def _skip_unreachable(self, pending: set[str]) -> None:
        changed = True
        while changed:
            changed = False
            for name in sorted(pending):
                why = None
                if name in self.branch:
                    condition, side = self.branch[name]
                    if condition in self.outcomes and self.outcomes[condition] != side:
                        branch = "if" if side else "else"
                        why = f"on the {branch} branch of {condition}, which was not taken"
                skipped = [d for d in self.graph[name] if self.record(d).status == "Skipped"]
                if why is None and skipped:
                    why = f"depends on skipped step {skipped[0]}"
                if why is not None:
                    pending.discard(name)
                    self.set_status(name, "Skipped", message=why)
                    changed = True

    def _finish(self, name: str, future: Future[StepResult], *, stopped: bool = False) -> bool:
        record = self.record(name)
        try:
            result = future.result()
        except StepFailedError as exc:
            with self.lock:
                record.properties = dict(exc.properties)
                record.metrics.update(exc.metrics)
            self.set_status(name, "Stopped" if stopped else "Failed", reason=exc.reason)
            return False
        except Exception as exc:  # a bug in the engine: fail the step visibly, keep the trace
            with (record.log_path or self.folder / "engine.log").open("a", encoding="utf-8") as log:
                log.write(traceback.format_exc())
            self.set_status(
                name, "Failed", reason=f"InternalError: the local engine failed ({type(exc).__name__}: {exc})"
            )
            return False
        with self.lock:
            record.properties = result.properties
            record.metrics.update(result.metrics)
            self.results[name] = result
            if record.type == "Condition":
                self.outcomes[name] = result.properties["Outcome"] == "True"
        self.set_status(name, "Succeeded")
        return True

    # -- one step ---------------------------------------------------------------------------------
    def scope(self, job_variables: Mapping[str, str] | None = None) -> Scope:
        """What a step's expressions read; ``job_variables`` name the job the step creates."""
        return Scope(
            self.parameters,
            {**self.variables, **(job_variables or {}), "CurrentDateTime": now().isoformat()},
            self._properties_of,
            self._property_file,
        )

    def _properties_of(self, step: str) -> Mapping[str, Any]:
        result = self.results.get(step)
        if result is None:
            raise ExpressionError(f"step {step!r} has not succeeded, so its properties are not available")
        return result.properties

    def _property_file(self, step: str, file_name: str) -> Any:
        key = (step, file_name)
        with self.lock:
            if key in self.property_files:
                return self.property_files[key]
        declared = next(
            (
                f
                for f in self.steps[step].get("PropertyFiles", []) or []
                if f.get("PropertyFileName") == file_name
            ),
            None,
        )
        if declared is None:
            raise ExpressionError(f"step {step!r} declares no property file {file_name!r}")
        outputs = self._properties_of(step).get("ProcessingOutputConfig", {}).get("Outputs", [])
        output = lookup(outputs, [(str(declared["OutputName"]),)], f"property file {file_name}")
        uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{declared['FilePath']}"
        path = LocalS3(self.home).path(uri)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExpressionError(f"property file {file_name} of step {step}: {uri} does not exist") from None
        except ValueError as exc:
            raise ExpressionError(
                f"property file {file_name} of step {step}: {uri} is not JSON ({exc})"
            ) from None
        with self.lock:
            self.property_files[key] = document
        return document

    def _step(self, name: str) -> StepResult:
        step = self.steps[name]
        kind = str(step.get("Type"))
        record = self.record(name)
        record.log_path = self.log_dir / f"{name}.log"
        if kind in _JOB_STEPS:
            record.job_dir = self.jobs_dir / name
        self.set_status(name, "Executing")
        job = job_name(self.id, name)
        scope = self.scope({v.name: job for v in EXECUTION_VARIABLES.values() if v.job_of == kind})
        with record.log_path.open("a", encoding="utf-8") as log:
            log.write(f"[rookery local] {now().isoformat()} step {name} ({kind}) of execution {self.id}\n")
            for note in self.execution.notes:
                if note.step == name:
                    log.write(f"[rookery local] note: {note}\n")
        try:
            args = scope.resolve(own_arguments(step))
        except ExpressionError as exc:
            raise StepFailedError(f"ClientError: cannot resolve the step's arguments: {exc}") from None
        try:
            check_resolved(step, args, self.engine.images)
        except UnsupportedDefinition as exc:
            raise StepFailedError(f"ValidationException: {exc.field}: {exc.problem}") from None
        if kind == "Condition":
            return run_condition(step, scope, record.log_path)
        if kind == "Fail":
            run_fail(name, args)
        ctx = StepContext(
            home=self.home,
            images=self.engine.images,
            execution_id=self.id,
            step_name=name,
            step_type=kind,
            job_name=job,
            args=args,
            raw_step=step,
            job_dir=self.jobs_dir / name,
            log_dir=self.log_dir,
            region=self.region,
            account=self.account,
            slots=self.slots,
            max_parallel=self.engine.max_parallel,
            cancel=self.cancel,
            emit=lambda message: self.event(name, "Executing", message),
            interrupt=self.interrupt,
        )
        return _RUNNERS[kind](ctx)
