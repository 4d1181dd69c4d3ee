"""The demo's phases, in order: audit the stage it deploys, ingest, run the pipeline locally, approve,
deploy on a local endpoint and score over HTTP, monitor the endpoint's captured traffic (the test
split, then a shifted copy), swap a second version in under steady traffic, watch the rollback
alarms stop a broken candidate, and write the report.

``prepare`` checks everything a user typed before anything slow starts (the stage, ``--param``
values against the rendered definition, the definition against the local engine). ``run_demo``
then runs the phases; the first phase that fails stops the demo, and the report is written in
every case, with what was done and why it stopped. The endpoint lives from the deploy phase to the
end of the last phase and is stopped before the report is written. A ``DemoUI`` receives progress
(the CLI prints it; tests and the benchmark pass ``QuietUI``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from botocore.exceptions import BotoCoreError, ClientError

import stage as config
from emulators.core.errors import LocalEngineError
from emulators.firehose import Delivery, DeliveryStream, IngestionError, deliver
from emulators.s3 import LocalS3
from emulators.sagemaker import (
    Execution,
    ImageMap,
    LocalEngine,
    LocalHome,
    LocalRegistry,
    ModelPackage,
    StepEvent,
    StepRecord,
)
from emulators.sagemaker_runtime.client import runtime_client
from infra.audit.run import AuditError, AuditResult, audit_stages
from pipelines import contract, steps
from pipelines.cache import render_definition_cached
from pipelines.parameters import AUC_THRESHOLD, parse_overrides
from pipelines.settings import PipelineResources, PipelineSettings
from rookery.demo.audit import audit_failure, audit_summary
from rookery.demo.candidates import Fault, faulty_candidate, faulty_image, retrained_candidate
from rookery.demo.dataset import DemoDataError, demo_records
from rookery.demo.deployment import (
    CLIENTS,
    DeploymentFailed,
    DeploymentRun,
    DeploymentStory,
    Kind,
    ServedEndpoint,
    change_status,
    outcome_of,
    serve_approved,
    story,
    under_traffic,
)
from rookery.demo.monitoring import (
    MonitoringDemoError,
    MonitoringStory,
    baseline_statistics,
    capture_window,
    compare,
    plan_shift,
    svg_plot,
)
from rookery.demo.report import (
    Artifact,
    ExecutionView,
    Gate,
    PackageView,
    Phase,
    Plot,
    Rejected,
    ReportData,
    ReportError,
    Section,
    StepRow,
    Trial,
    embed_png,
    gate_checks,
    shown_path,
    write_report,
)
from rookery.demo.scoring import (
    CONTENT_TYPE,
    Scoring,
    ScoringError,
    invoke_in_batches,
    parse_predictions,
    read_labels,
    score_test_split,
)
from rookery.demo.timeline import timeline_png
from rookery_contracts.evaluation import CONFUSION_PLOT_FILE, EVALUATION_FILE, ROC_PLOT_FILE
from stage import Stage, available_stages, load_stage
from stage.names import local_endpoint_name

DEMO_DIR: Final = "demo"
REPORT_FILE: Final = "report.html"
DELIVERY_FILE: Final = "ingestion.json"
APPROVAL_NOTE: Final = "approved by `rookery demo` after the gate passed"
SWAP_NOTE: Final = "approved by `rookery demo`: the second version it swaps in under steady traffic"
BROKEN_NOTE: Final = "approved by `rookery demo`: a broken candidate for the rollback alarms to stop"
REJECT_NOTE: Final = "rejected by `rookery demo`: the rollback alarms stopped this version"
DEPLOYMENT_DIR: Final = "deployment"
FAULT: Final[Fault] = "errors"  # the broken candidate's fault: every invocation answers 500


class DemoFailed(Exception):  # noqa: N818 - reads as what happened: the demo failed
    """A phase failed; the message is the reason shown to the user and in the report."""


# Failures a phase reports as its reason (anything else is a bug and keeps its traceback).
PHASE_ERRORS: Final[tuple[type[Exception], ...]] = (
    DemoFailed,
    AuditError,
    DemoDataError,
    IngestionError,
    LocalEngineError,
    ReportError,
    ScoringError,
    DeploymentFailed,
    MonitoringDemoError,
    ClientError,
    BotoCoreError,
)


class DemoUI(Protocol):
    def phase(self, number: int, total: int, name: str, title: str) -> None: ...
    def note(self, text: str) -> None: ...
    def audited(self, audit: AuditResult) -> None: ...
    def step(self, event: StepEvent) -> None: ...
    def done(self, phase: Phase) -> None: ...


class QuietUI:
    """Progress goes nowhere (tests, benchmarks)."""

    def phase(self, number: int, total: int, name: str, title: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def audited(self, audit: AuditResult) -> None:
        pass

    def step(self, event: StepEvent) -> None:
        pass

    def done(self, phase: Phase) -> None:
        pass


@dataclass(frozen=True)
class DemoOptions:
    stage: str = "dev"
    tune: bool = False
    home: LocalHome = field(default_factory=LocalHome.default)
    params: tuple[str, ...] = ()  # NAME=VALUE pipeline parameter overrides
    # The stages to audit; None: the stage the demo runs (the one it deploys), so another stage's
    # file, valid or not, neither slows nor blocks it.
    audit: tuple[str, ...] | None = None
    # Where --stage is looked up (None: stage.STAGES_DIR). The audit always synthesizes
    # infra/stages, which is what `cdk synth` reads: a stage from elsewhere is not audited.
    stages_dir: Path | None = None


@dataclass(frozen=True)
class Prepared:
    """Everything checked before the first phase runs."""

    options: DemoOptions
    stage: Stage
    resources: PipelineResources
    definition: dict[str, Any]
    parameters: dict[str, str]
    audit_stages: tuple[str, ...]

    @property
    def variant(self) -> str:
        return "tune" if self.options.tune else "train"


@dataclass(frozen=True)
class DemoResult:
    passed: bool
    failure: str | None
    report_path: Path
    data: ReportData


def prepare(options: DemoOptions) -> Prepared:
    """Load the stage, render its definition, check ``--param`` and the engine's support.

    Raises ``ConfigError``, ``SettingsError``, ``ParameterError`` or ``UnsupportedDefinition``
    (each names the problem and the fix) before anything is written.
    """
    stage = load_stage(options.stage, stages_dir=options.stages_dir or config.STAGES_DIR)
    resources = PipelineResources.placeholders(stage)
    settings = PipelineSettings.from_stage(stage, resources, tune=options.tune)
    definition = render_definition_cached(settings, options.home.cache_dir)
    parameters = parse_overrides(definition, options.params)
    engine = LocalEngine(options.home, ImageMap.project(resources.image_uri))
    engine.check(definition)
    if options.audit is not None:
        audit = options.audit
    else:
        audit = (stage.name,) if options.stages_dir is None and stage.name in available_stages() else ()
    for name in audit:
        load_stage(name)
    return Prepared(
        options=options,
        stage=stage,
        resources=resources,
        definition=definition,
        parameters=parameters,
        audit_stages=audit,
    )


# --- Reading an execution's artifacts ----------------------------------------------------------


def processing_output(record: StepRecord, name: str) -> str:
    """The S3 URI of a processing step's output ``name`` (DescribeProcessingJob's shape)."""
    outputs = record.properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for output in outputs:
        if output.get("OutputName") == name:
            return str(output["S3Output"]["S3Uri"])
    raise DemoFailed(f"step {record.name} has no output {name!r} in its properties")


def _single(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(found) != 1:
        raise DemoFailed(f"expected one {what} ({pattern}) in {folder}, found {len(found)}")
    return found[0]


def _step_rows(execution: Execution) -> tuple[StepRow, ...]:
    rows = []
    for record in execution.steps:
        offset = (
            (record.started_at - execution.started_at).total_seconds()
            if record.started_at is not None
            else None
        )
        rows.append(
            StepRow(
                name=record.name,
                type=record.type,
                status=record.status,
                offset=offset,
                seconds=record.seconds,
                failure_reason=record.failure_reason,
                log=str(record.log_path) if record.log_path else None,
            )
        )
    return tuple(rows)


def _trials(execution: Execution) -> tuple[Trial, ...]:
    """The tuning step's trials (the engine's record of each), best objective first."""
    for record in execution.steps:
        if record.type != "Tuning":
            continue
        best = record.metrics.get("best")
        rows = [
            Trial(
                name=str(t.get("name")),
                status=str(t.get("status")),
                objective=t.get("objective"),
                hyperparameters=", ".join(
                    f"{k}={v}" for k, v in sorted((t.get("hyperparameters") or {}).items())
                ),
                best=t.get("name") == best,
            )
            for t in record.metrics.get("trials") or []
            if isinstance(t, Mapping)
        ]
        return tuple(sorted(rows, key=lambda t: (t.objective is None, -(t.objective or 0.0))))
    return ()


def _objective(execution: Execution) -> str | None:
    for record in execution.steps:
        objective = record.metrics.get("objective") if record.type == "Tuning" else None
        if isinstance(objective, Mapping):
            return f"{objective.get('metric')} ({str(objective.get('type', '')).lower()})"
    return None


def _record(execution: Execution, name: str) -> StepRecord | None:
    return next((s for s in execution.steps if s.name == name), None)


# --- The phases --------------------------------------------------------------------------------


class _Demo:
    """State collected phase by phase, for the next phase and for the report."""

    def __init__(self, prepared: Prepared, ui: DemoUI) -> None:
        self.p = prepared
        self.ui = ui
        self.home = prepared.options.home
        self.s3 = LocalS3(self.home)
        self.demo_dir = self.home.root / DEMO_DIR
        self.images = ImageMap.project(prepared.resources.image_uri)
        self.audits: list[AuditResult] = []
        self.delivery: Delivery | None = None
        self.rejected: tuple[Rejected, ...] = ()
        self.execution: Execution | None = None
        self.data_report: dict[str, Any] | None = None
        self.evaluation: dict[str, Any] | None = None
        self.plots: tuple[Plot, ...] = ()
        self.gate: Gate | None = None
        self.package: ModelPackage | None = None
        self.registered_status: str | None = None
        self.scoring: Scoring | None = None
        self.artifacts: list[Artifact] = []
        # The project image, and the stand-in image of the broken candidate (as if pushed beforehand).
        faulty_uri, faulty_program = faulty_image(FAULT)
        self.serving_images = ImageMap({**self.images.images, faulty_uri: faulty_program})
        self.served: ServedEndpoint | None = None
        self.story: DeploymentStory | None = None
        self.monitoring: MonitoringStory | None = None

    def artifact(self, label: str, path: Path | str) -> None:
        self.artifacts.append(Artifact(label, shown_path(path)))

    # 1
    def audit(self) -> str:
        out = self.demo_dir / "audit"
        self.audits = audit_stages(self.p.audit_stages, out, on_stage=self.ui.audited)
        for result in self.audits:
            self.artifact(
                f"security audit of stage {result.stage} (also audit.json, audit.sarif)", result.report_path
            )
            self.artifact(f"cloud assembly of stage {result.stage}", result.assembly_dir)
        failure = audit_failure(self.audits)
        if failure:
            raise DemoFailed(failure)
        return audit_summary(self.audits)

    # 2
    def ingest(self) -> str:
        self._remove_previous_delivery()
        stream = DeliveryStream.for_stage(self.p.stage)
        records = demo_records(self.p.stage.dataset)
        self.delivery = delivery = deliver(
            records, stream, self.home, log_path=self.demo_dir / "ingest" / "firehose_transform.log"
        )
        self.rejected = tuple(
            Rejected(
                position=f.position,
                record_id=f.record_id,
                planted=records[f.position].invalid_because,
                reason=f.reason,
                preview=f.preview,
            )
            for f in delivery.failures
        )
        (self.demo_dir / DELIVERY_FILE).write_text(json.dumps(delivery.to_json(), indent=2), encoding="utf-8")
        self.artifact("transform Lambda log (reasons for rejected records)", delivery.log_path)
        for uri in delivery.data_objects:
            self.artifact("ingested records (Firehose object)", self.s3.path(uri))
        for uri in delivery.error_objects:
            self.artifact("rejected records (Firehose error output)", self.s3.path(uri))
        if delivery.ok == 0:
            raise DemoFailed(f"no record passed the transform; see {delivery.log_path}")
        return (
            f"{delivery.records_in} records in, {delivery.ok} delivered to {delivery.data_prefix}, "
            f"{delivery.failed} rejected to {delivery.error_prefix}"
        )

    def _remove_previous_delivery(self) -> None:
        """Preprocess would read an earlier demo's objects again (as duplicates): remove exactly those."""
        manifest = self.demo_dir / DELIVERY_FILE
        if not manifest.is_file():
            return
        previous = Delivery.from_json(json.loads(manifest.read_text(encoding="utf-8")))
        removed = sum(self.s3.delete(uri) for uri in previous.written)
        manifest.unlink()
        if removed:
            self.ui.note(f"removed the {removed} objects the previous demo run ingested")

    # 3
    def pipeline(self) -> str:
        engine = LocalEngine(self.home, self.images)
        self.execution = execution = engine.run(
            self.p.definition,
            parameters=self.p.parameters,
            on_event=self.ui.step,
            pipeline_name=self.p.resources.pipeline_name,
        )
        self.artifact("execution record (status, timings, properties)", execution.path / "execution.json")
        for record in execution.steps:
            if record.log_path:
                self.artifact(f"{record.name} log", record.log_path)
        self._collect(execution)
        if execution.status != "Succeeded":
            where = f"step {execution.failed_step}: " if execution.failed_step else ""
            raise DemoFailed(
                f"the pipeline execution {execution.id} {execution.status}: {where}{execution.failure_reason}"
            )
        if self.package is None:
            raise DemoFailed(f"execution {execution.id} succeeded but registered no model package")
        return (
            f"execution {execution.id} succeeded in {execution.seconds or 0:.1f} s; "
            f"registered {self.package.ref} ({self.registered_status})"
        )

    def _collect(self, execution: Execution) -> None:
        """Whatever the finished steps left behind, for the report (also after a failure)."""
        preprocess = _record(execution, steps.PREPROCESS)
        if preprocess and preprocess.status == "Succeeded":
            report = _single(self.s3.path(processing_output(preprocess, "report")), "*.json", "data report")
            self.data_report = json.loads(report.read_text(encoding="utf-8"))
            self.artifact("data report (Preprocess)", report)
            for name in ("train", "validation", "test", "inference"):
                self.artifact(f"{name} split", self.s3.path(processing_output(preprocess, name)))
        evaluate = _record(execution, steps.EVALUATE)
        if evaluate and evaluate.status == "Succeeded":
            folder = self.s3.path(processing_output(evaluate, contract.EVALUATION_OUTPUT))
            evaluation_path = folder / EVALUATION_FILE
            self.evaluation = json.loads(evaluation_path.read_text(encoding="utf-8"))
            self.plots = (
                embed_png(folder / CONFUSION_PLOT_FILE, title="Confusion matrix, test split",
                          alt="Confusion matrix of the test split at the chosen threshold"),
                embed_png(folder / ROC_PLOT_FILE, title="ROC curve, test split",
                          alt="ROC curve of the test split with the chosen operating point"),
            )  # fmt: skip
            self.artifact(f"{EVALUATION_FILE} (metrics, threshold, operating point)", evaluation_path)
            self.artifact("confusion matrix and ROC plots", folder)
            self.gate = self._gate(execution)
        for name in (steps.TRAIN, steps.TUNE):
            record = _record(execution, name)
            uri = (record.properties.get("ModelArtifacts") or {}).get("S3ModelArtifacts") if record else None
            if uri:
                self.artifact("model artifact (model.tar.gz)", self.s3.path(uri))
        register = _record(execution, steps.REGISTER)
        if register and register.status == "Succeeded":
            arn = str(register.properties["ModelPackageArn"])
            self.package = LocalRegistry(self.home).get(arn)
            self.registered_status = self.package.approval_status
            if self.package.path:
                self.artifact("model package version (registry)", self.package.path)
        transform = _record(execution, steps.BATCH_TRANSFORM)
        if transform and transform.status == "Succeeded":
            output = self.s3.path(str(transform.properties["TransformOutput"]["S3OutputPath"]))
            self.artifact("batch transform output (test split)", _single(output, "*.out", "transform output"))

    def _gate(self, execution: Execution) -> Gate:
        assert self.evaluation is not None
        gate = _record(execution, steps.GATE)
        fail = _record(execution, steps.FAIL)
        outcome = gate.properties.get("Outcome") if gate else None
        passed: bool | None = None if outcome is None else str(outcome).lower() == "true"
        failed_at_fail = fail is not None and fail.status == "Failed"
        return Gate(
            passed=False if failed_at_fail else passed,
            checks=gate_checks(self.evaluation, float(execution.parameters[AUC_THRESHOLD])),
            message=execution.failure_reason if failed_at_fail else None,
        )

    # 4
    def approve(self) -> str:
        assert self.package is not None
        self.package = LocalRegistry(self.home).approve(self.package.arn, description=APPROVAL_NOTE)
        return f"{self.package.ref}: {self.registered_status} -> {self.package.approval_status}"

    # 5
    def deploy_and_score(self) -> str:
        assert self.package is not None
        stage = self.p.stage
        self.served = served = serve_approved(
            self.home,
            stage,
            self.serving_images,
            group=self.package.group,
            name=local_endpoint_name(stage, "demo"),
            raw_bucket=self.p.resources.raw_bucket,
        )
        self.story = told = story(served, stage)
        endpoint = served.endpoint
        self.ui.note(
            f"endpoint {endpoint.name} serves {endpoint.package.ref} at {endpoint.url} "
            f"({served.first_decision}); deploy on approval is on"
        )
        self.ui.note(
            f"{told.policy}; time scale {told.time_scale:g}x (local only): "
            + ", ".join(f"{w.what} {w.seconds:g} s -> {w.local:g} s" for w in told.waits)
        )
        if endpoint.package.arn != self.package.arn:
            raise DemoFailed(
                f"the endpoint started with {endpoint.package.ref}, not the approved {self.package.ref}: "
                f"{served.first_decision}"
            )
        self.scoring = scoring = self._score()
        if not scoring.agrees_with_transform:
            raise DemoFailed(
                "HTTP predictions disagree with the batch transform: "
                f"{scoring.labels_agreeing_with_transform} of {scoring.records} labels equal "
                f"({scoring.transform_rows} transform rows), largest probability difference "
                f"{scoring.max_probability_difference:.2e}"
            )
        return (
            f"{endpoint.package.ref} deployed on {endpoint.name}; {scoring.records} test records over "
            f"HTTP in {scoring.requests} request{'s' if scoring.requests != 1 else ''}: "
            f"{scoring.correct} correct ({scoring.accuracy:.1%}), all equal to the batch transform's"
        )

    def _test_split(self) -> tuple[list[str], str, str]:
        """The test split's raw records, its labelled CSV and the batch transform's output for it, over
        every Preprocess host's files (one host: ``test.jsonl``; several: ``test-algo-k.jsonl``, each
        with its ``.csv`` and ``.jsonl.out`` of the same name)."""
        assert self.execution is not None
        preprocess = self.execution.step(steps.PREPROCESS)
        inference = self.s3.path(processing_output(preprocess, "inference"))
        test = self.s3.path(processing_output(preprocess, "test"))
        transform = self.execution.step(steps.BATCH_TRANSFORM)
        out = self.s3.path(str(transform.properties["TransformOutput"]["S3OutputPath"]))
        files = sorted(inference.glob("*.jsonl")) if inference.is_dir() else []
        if not files:
            raise DemoFailed(f"expected test records (*.jsonl) in {inference}, found none")
        records: list[str] = []
        labels, answers = "", ""
        for path in files:
            labels_csv, answer = test / f"{path.stem}.csv", out / f"{path.name}.out"
            for paired in (labels_csv, answer):
                if not paired.is_file():
                    raise DemoFailed(f"{path} has no {paired.name} beside its split ({paired.parent})")
            records += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            labels += labels_csv.read_text(encoding="utf-8")
            answers += answer.read_text(encoding="utf-8")
        return records, labels, answers

    def _score(self) -> Scoring:
        """The test split over HTTP through the endpoint, compared with the labels and batch transform."""
        assert self.served is not None and self.data_report is not None
        endpoint = self.served.endpoint
        records, labels, answers = self._test_split()
        return score_test_split(
            endpoint_url=endpoint.url,
            endpoint_name=endpoint.name,
            region=self.p.stage.region,
            records=records,
            labels=read_labels(
                labels,
                positive=str(self.data_report["positive_class"]),
                negative=str(self.data_report["negative_class"]),
            ),
            transform=parse_predictions(answers, source="the batch transform's output"),
            positive_class=str(self.data_report["positive_class"]),
        )

    # 6
    def monitor(self) -> str:
        """The test split, then a shifted copy, each in a capture window of its own, each judged by the
        data-quality job with the served version's baseline."""
        served, _ = self._deployed()
        endpoint = served.endpoint
        capture = endpoint.capture
        if capture is None:
            raise DemoFailed(
                f"endpoint {endpoint.name} captures no traffic; set serving.capture_sampling_percent above 0 "
                f"in stage {self.p.stage.name} to monitor it"
            )
        package = endpoint.package
        dataset = self.p.stage.dataset
        shift = plan_shift(
            baseline_statistics(self.home, package), numeric=dataset.numeric, categorical=dataset.categorical
        )
        lines = self._test_split()[0]
        moved = [json.dumps(r) for r in shift.apply([json.loads(line) for line in lines])]
        client = runtime_client(endpoint.url, self.p.stage.region)
        clean = capture_window(capture, lambda: invoke_in_batches(client, endpoint.name, lines))
        shifted = capture_window(capture, lambda: invoke_in_batches(client, endpoint.name, moved))
        comparison = compare(
            self.home,
            self.p.stage,
            package,
            endpoint=endpoint.name,
            clean=clean,
            shifted=shifted,
            features=shift.features,
            raw_bucket=self.p.resources.raw_bucket,
            artifacts_bucket=self.p.resources.artifacts_bucket,
        )
        self.monitoring = told = MonitoringStory(
            endpoint=endpoint.name,
            package=package.ref,
            baseline=str(package.drift_check_baselines["ModelDataQuality"]["Statistics"]["S3Uri"]),
            shift=shift,
            comparison=comparison,
            sent=len(lines),
            plot=svg_plot(comparison),
        )
        for name, run in (("test split", comparison.clean), ("shifted copy", comparison.moved)):
            self.artifact(f"data-quality monitoring job ({name}: report, violations, log)", run.log.parent)
        clean_report = comparison.clean.report
        if not comparison.as_expected:
            raise DemoFailed(
                f"monitoring flagged {sorted(comparison.flagged(comparison.clean)) or 'nothing'} on the test "
                f"split and {told.flagged or 'nothing'} on the shifted copy; expected nothing, then exactly "
                f"{sorted(shift.features)} ({shift.describe()})"
            )
        return (
            f"test split ({clean_report['records']} records): {clean_report['status']}; shifted copy "
            f"({shift.describe()}): {', '.join(told.flagged)} flagged, exactly the shifted features"
        )

    def _deployed(self) -> tuple[ServedEndpoint, DeploymentStory]:
        assert self.served is not None and self.story is not None
        return self.served, self.story

    def _under_traffic(self, kind: Kind, ref: str, note: str) -> DeploymentRun:
        """Approve ``ref`` while the clients call the endpoint; the deployment it caused, plotted."""
        served, _ = self._deployed()
        body = (self._test_split()[0][0] + "\n").encode("utf-8")
        done, calls = under_traffic(
            served,
            body,
            content_type=CONTENT_TYPE,
            region=self.p.stage.region,
            change=lambda: change_status(served, ref, "Approved", description=note, on_entry=self._entry),
        )
        run = outcome_of(kind, served, done, calls)
        path = self.demo_dir / DEPLOYMENT_DIR / f"{kind}.png"
        if kind == "swap":
            title = f"swap: {run.previous} -> {run.target} ({run.status.lower()})"
        else:
            stopped_by = f"stopped by {run.alarm.name}" if run.alarm else run.status.lower()
            title = f"rollback: {run.target} {stopped_by}"
        timeline_png(path, run, title=title)
        self.artifact(f"deployment timeline plot ({kind})", path)
        self.artifact(
            f"deployment record ({kind}: timeline, alarm datapoints, outcome)",
            served.endpoint.folder / "deployments" / f"{run.deployment_id}.json",
        )
        alt = f"traffic share, errors and latency over time during the {kind}"
        plot = embed_png(path, title=title, alt=alt)
        return replace(run, plot=plot)

    def _entry(self, entry: Mapping[str, Any]) -> None:
        if entry.get("Event") != "AlarmsEvaluated":
            shares = " ".join(f"{k} {v:.0%}" for k, v in (entry.get("Shares") or {}).items())
            seconds = float(entry.get("Seconds", 0))
            self.ui.note(f"[{seconds:6.2f} s] {entry.get('Event')} ({shares}): {entry.get('Detail')}")

    # 7
    def swap(self) -> str:
        served, told = self._deployed()
        live = served.endpoint.package
        candidate = retrained_candidate(self.home, live)
        self.ui.note(f"registered {candidate.ref} (retrained from {live.ref}); approving it under traffic")
        told.swap = run = self._under_traffic("swap", candidate.ref, SWAP_NOTE)
        if run.status != "Succeeded" or run.serving_after != candidate.ref:
            raise DemoFailed(f"the swap to {candidate.ref} did not succeed: {run.reason}")
        if run.failures:
            raise DemoFailed(
                f"{run.failures} of {run.requests} requests failed during the swap to {candidate.ref}; "
                "a good candidate swaps without a failed request"
            )
        rescored = self._score()
        told.rescored = (
            f"{rescored.records} test records scored again on {candidate.ref}: {rescored.correct} correct, "
            f"{rescored.labels_agreeing_with_transform} of {rescored.records} labels equal to the batch "
            "transform's"
        )
        if not rescored.agrees_with_transform:
            raise DemoFailed(f"after the swap, {told.rescored}; the same model must answer the same")
        assert run.full_traffic is not None
        return (
            f"{run.previous} -> {run.target} under {CLIENTS} boto3 clients: {run.requests} requests, "
            f"{run.failures} failed; all traffic on {run.target} {run.full_traffic:.1f} s after the "
            f"approval, old fleet stopped at {run.ended:.1f} s; p99 {run.steady_p99_ms or 0:.0f} ms steady, "
            f"{run.change_p99_ms or 0:.0f} ms during the swap"
        )

    # 8
    def rollback(self) -> str:
        served, told = self._deployed()
        live = served.endpoint.package
        broken, _ = faulty_candidate(self.home, live, self.serving_images, fault=FAULT)
        self.ui.note(f"registered {broken.ref}: {live.ref}'s model in a serving image that answers 500")
        told.rollback = run = self._under_traffic("rollback", broken.ref, BROKEN_NOTE)
        if run.status == "Succeeded":
            raise DemoFailed(f"the broken candidate {broken.ref} was deployed: no rollback alarm stopped it")
        if run.alarm is None or run.serving_after != live.ref:
            raise DemoFailed(f"the deployment of {broken.ref} failed without an alarm: {run.reason}")
        if run.failures_after:
            raise DemoFailed(
                f"{run.failures_after} requests failed after traffic went back to {live.ref}; none may"
            )
        rejected = change_status(served, broken.ref, "Rejected", description=REJECT_NOTE)
        told.rejected = f"{rejected.decision.get('Action')}: {rejected.decision.get('Reason')}"
        if rejected.record is not None:
            raise DemoFailed(f"rejecting {broken.ref} changed the endpoint: {told.rejected}")
        assert run.restored is not None
        return (
            f"{run.target} stopped by {run.alarm.name} ({run.alarm.metric} {run.alarm.statistic} "
            f"{', '.join(run.alarm.datapoints)} against {run.alarm.threshold}); all traffic back on "
            f"{live.ref} {run.restored:.1f} s after the approval; {run.canary_failures} of "
            f"{run.canary_requests} requests failed during the canary, {run.failures_after} after; "
            f"{broken.ref} rejected"
        )

    def close(self) -> None:
        """Stop the endpoint (if it runs) and note what it captured."""
        served, self.served = self.served, None
        if served is None:
            return
        served.close()
        capture = served.endpoint.capture
        if capture is not None and self.story is not None:
            self.story.capture = (
                f"{capture.captured} invocations in {len(capture.files)} files under {capture.destination} "
                f"({capture.settings.sampling_percent}% sampled, SageMaker's capture format)"
            )
            if capture.files:
                self.artifact("data capture (SageMaker's format)", self.s3.path(capture.destination))

    def report_data(self, phases: Sequence[Phase], failure: str | None, report_path: Path) -> ReportData:
        execution = self.execution
        return ReportData(
            stage=self.p.stage.name,
            variant=self.p.variant,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            home=shown_path(self.home.root),
            passed=failure is None,
            failure=failure,
            phases=tuple(phases),
            audits=tuple(self.audits),
            delivery=self.delivery,
            rejected=self.rejected,
            data_report=self.data_report,
            evaluation=self.evaluation,
            plots=self.plots,
            gate=self.gate,
            execution=None
            if execution is None
            else ExecutionView(
                id=execution.id,
                pipeline_name=execution.pipeline_name,
                status=execution.status,
                failure_reason=execution.failure_reason,
                seconds=execution.seconds,
                parameters=execution.parameters,
                steps=_step_rows(execution),
                folder=shown_path(execution.path),
                trials=_trials(execution),
                objective=_objective(execution),
            ),
            package=None
            if self.package is None
            else PackageView(
                arn=self.package.arn,
                ref=self.package.ref,
                approval_status=self.package.approval_status,
                registered_status=self.registered_status or self.package.approval_status,
            ),
            scoring=self.scoring,
            sections=self.sections(),
            artifacts=(Artifact("this report", shown_path(report_path)), *self.artifacts),
        )

    def sections(self) -> tuple[Section, ...]:
        """The report's sections after the core ones, in order (each says so when its phase did not run)."""
        told = self.story
        cards: list[tuple[str, str]] = []
        if told is not None and told.swap is not None:
            swap = told.swap
            cards.append((f"swap to {swap.target}: failed requests", f"{swap.failures} / {swap.requests}"))
        if told is not None and told.rollback is not None:
            rollback = told.rollback
            cards.append(("broken candidate", "rolled back" if rollback.alarm else rollback.status))
        watched = self.monitoring
        monitoring_cards: tuple[tuple[str, str], ...] = ()
        if watched is not None:
            clean = watched.comparison.clean.report
            monitoring_cards = (
                ("monitoring: test split", str(clean["status"])),
                ("monitoring: shifted copy", f"{len(watched.flagged)} features flagged"),
            )
        return (
            Section("deployment", "Deployment", "deployment.html.j2", told, tuple(cards)),
            Section("monitoring", "Monitoring", "monitoring.html.j2", watched, monitoring_cards),
        )


def run_demo(prepared: Prepared, ui: DemoUI | None = None) -> DemoResult:
    """Run every phase in order (see the module docstring); the report is written whatever happens."""
    ui = ui or QuietUI()
    demo = _Demo(prepared, ui)
    runners: list[tuple[str, str, Callable[[], str]]] = [
        (
            "audit",
            f"Synthesize and audit the stage it deploys ({', '.join(prepared.audit_stages)})",
            demo.audit,
        ),
        ("ingest", "Ingest the bundled penguins through the Firehose transform", demo.ingest),
        ("pipeline", f"Run the {prepared.variant} pipeline locally", demo.pipeline),
        ("approve", "Approve the registered model version", demo.approve),
        (
            "deploy and score",
            "Deploy it on a local endpoint with the stage's serving settings, score the test split over HTTP",
            demo.deploy_and_score,
        ),
        (
            "monitor",
            "Send the test split, then a shifted copy, and run the monitoring job over each capture window",
            demo.monitor,
        ),
        ("swap", "Approve a second version and swap it in blue/green under steady traffic", demo.swap),
        ("rollback", "Approve a broken candidate and watch the rollback alarms stop it", demo.rollback),
    ]
    if not prepared.audit_stages:
        runners = runners[1:]
    total = len(runners) + 1
    phases: list[Phase] = []
    failure: str | None = None
    try:
        for number, (name, title, runner) in enumerate(runners, start=1):
            if failure is not None:
                phases.append(Phase(name, "not run", None, "the demo stopped at an earlier phase"))
                continue
            ui.phase(number, total, name, title)
            started = time.monotonic()
            try:
                detail = runner()
            except PHASE_ERRORS as exc:
                failure = f"{name}: {exc}"
                phases.append(Phase(name, "failed", time.monotonic() - started, str(exc)))
            else:
                phases.append(Phase(name, "passed", time.monotonic() - started, detail))
            ui.done(phases[-1])
    finally:
        demo.close()
    ui.phase(total, total, "report", "Write the report")
    started = time.monotonic()
    report_path = demo.demo_dir / REPORT_FILE
    written = Phase("report", "passed", None, f"written to {shown_path(report_path)}")
    data = demo.report_data([*phases, written], failure, report_path)
    write_report(data, report_path)
    written = replace(written, seconds=time.monotonic() - started)
    ui.done(written)
    data = replace(data, phases=(*phases, written))
    return DemoResult(passed=failure is None, failure=failure, report_path=report_path, data=data)
