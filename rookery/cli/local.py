"""``rookery local``: run the stage's pipeline on this machine, inspect executions, approve or reject
versions, serve (with deploy on approval), invoke and describe endpoints, monitor their traffic.

``run`` renders the stage's definition (offline placeholders; the project image stands for its
ECR URI), optionally lands ``--data`` in the local raw bucket, and executes it with the local
engine, showing each step live. Exit codes: 0 the execution succeeded (or the command did its
job), 1 the execution failed (also when the disk filled up during it) or the model answered with
an error, 2 a usage, config or definition error, or a home that cannot be written (nothing ran),
130 the execution was stopped (Ctrl-C or SIGTERM: running jobs are stopped, the execution is
recorded as Stopped). A run whose process was killed outright shows as Failed, interrupted.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from emulators.core.errors import EndpointError, UnwritableError
from emulators.core.files import check_writable
from emulators.core.home import LocalHome
from emulators.firehose import land
from emulators.s3 import LocalS3
from emulators.sagemaker import (
    Execution,
    ImageMap,
    LocalEndpoint,
    LocalEngine,
    LocalRegistry,
    MonitoringRun,
    StepEvent,
    run_monitoring,
)
from emulators.sagemaker.storage import stored
from emulators.sagemaker_runtime import EndpointSettings, LocalDeployer, find_endpoint, monitored_package
from emulators.sagemaker_runtime.client import InvocationError, invoke_endpoint
from emulators.sagemaker_runtime.deployer import (
    Decided,
    Finished,
    Step,
    Waiting,
    follow,
    package_written,
    served_endpoints,
)
from pipelines.cache import render_definition_cached
from pipelines.definition import iter_steps
from pipelines.parameters import INPUT_DATA_URI, ParameterError, parse_overrides
from pipelines.settings import PipelineResources, PipelineSettings
from rookery.cli import endpoint_view
from rookery.cli.data import size_text, stored_line
from rookery.cli.errors import err, fail, reported
from rookery.cli.options import (
    HomeOption,
    OptionalStageOption,
    ParamOption,
    StageOption,
    TuneOption,
    local_home,
)
from rookery.cli.run_result import result_lines
from rookery.cli.stages import resolve_stage, stage_of_group
from rookery_contracts import monitoring as mon
from rookery_contracts.evaluation import AUC_PATH, THRESHOLD_PATH, value_at
from stage import load_stage
from stage.names import local_endpoint_name, model_package_group_name, pipeline_name

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)

STATUS_STYLE = {
    "Succeeded": "green",
    "Failed": "bold red",
    "Executing": "yellow",
    "Starting": "yellow",
    "Skipped": "dim",
    "NotExecuted": "dim",
    "Stopped": "red",
    "Pending": "dim",
    "Damaged": "bold red",
}


def _styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


# -- run ---------------------------------------------------------------------------------------------
@dataclass
class _Row:
    type: str
    status: str = "Pending"
    message: str = ""
    started: float | None = None
    ended: float | None = None


class _Progress:
    """The live table: one row per step, updated from the engine's events."""

    def __init__(self, steps: list[tuple[str, str]]) -> None:
        self.rows = {name: _Row(kind) for name, kind in steps}
        self.lock = threading.Lock()

    def event(self, event: StepEvent) -> None:
        with self.lock:
            row = self.rows[event.step_name]
            if event.status in ("Starting", "Executing"):
                row.started = row.started or time.monotonic()
            else:
                row.ended = time.monotonic()
            row.status = event.status
            if event.message:
                row.message = event.message

    def table(self) -> Table:
        table = Table(title="steps", title_justify="left", expand=False)
        for column in ("step", "type", "status", "time", "latest"):
            table.add_column(column, overflow="fold")
        with self.lock:
            for name, row in self.rows.items():
                elapsed = (
                    "" if row.started is None else f"{(row.ended or time.monotonic()) - row.started:.1f} s"
                )
                table.add_row(name, row.type, _styled(row.status), elapsed, row.message[:80])
        return table


def _detail(step: Any) -> str:
    """One line on what a finished step produced (for the summary table)."""
    if step.failure_reason and step.status in ("Failed", "Stopped"):
        return str(step.failure_reason)
    if step.status != "Succeeded":
        return ""
    props, metrics = step.properties, step.metrics
    if step.type == "Training" and metrics.get("final_metrics"):
        shown = {k: v for k, v in metrics["final_metrics"].items() if k.startswith("validation:")}
        text = ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items()))
        return text + (
            f"; resumed after {metrics['interruptions']} interruption(s)"
            if metrics.get("interruptions")
            else ""
        )
    if step.type == "Tuning" and metrics.get("best"):
        objective = metrics.get("objective", {})
        return (
            f"{len(metrics.get('trials', []))} trials; best {metrics['best']} "
            f"{objective.get('metric')}={metrics.get('best_objective'):.4f}"
        )
    if step.type == "Condition":
        return f"Outcome {props.get('Outcome')}"
    if step.type == "RegisterModel":
        ref = f"{props.get('ModelPackageGroupName')}/{props.get('ModelPackageVersion')}"
        return f"{ref} ({props.get('ModelApprovalStatus')})"
    if step.type == "Transform" and metrics:
        return f"{metrics.get('records')} records in {metrics.get('requests')} request(s)"
    if step.type == "Model":
        return str(props.get("ModelName", ""))
    return ""


def _summary(execution: Execution) -> Table:
    table = Table(title=f"execution {execution.id}: {execution.status}", title_justify="left")
    table.add_column("step", no_wrap=True)
    for column in ("type", "status", "time", "result"):
        table.add_column(column, overflow="fold")
    for step in execution.steps:
        table.add_row(step.name, step.type, _styled(step.status), _seconds(step.seconds), _detail(step))
    return table


def _failure_panel(execution: Execution) -> Panel:
    step = execution.step(execution.failed_step) if execution.failed_step else None
    lines = [
        f"step:   {execution.failed_step or '-'} ({step.type if step else '-'})",
        f"reason: {execution.failure_reason or 'unknown'}",
    ]
    if step is not None and step.log_path:
        lines.append(f"log:    {step.log_path}")
    lines.append(f"record: {execution.path / 'execution.json'}")
    return Panel(
        Text("\n".join(lines)), title=f"execution {execution.id} failed", border_style="red", expand=False
    )


@contextlib.contextmanager
def _progress_display(progress: _Progress) -> Iterator[Callable[[StepEvent], None]]:
    """A live table on a terminal; one line per step change otherwise (CI logs, pipes)."""
    if err.is_terminal:
        with Live(progress.table(), console=err, refresh_per_second=4, transient=True) as live:

            def update(event: StepEvent) -> None:
                progress.event(event)
                live.update(progress.table())

            yield update
        return
    started = time.monotonic()

    def line(event: StepEvent) -> None:
        progress.event(event)
        detail = f"  {event.message}" if event.message else ""
        err.print(
            f"[{time.monotonic() - started:7.1f} s] {event.step_name:<16} {event.status:<11}{detail}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    yield line


@app.command()
def run(
    *,
    stage: OptionalStageOption = None,
    tune: TuneOption = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="JSON-lines or CSV file for the stage's dataset (default: the local raw bucket)"
        ),
    ] = None,
    param: ParamOption = None,
    home: HomeOption = None,
) -> None:
    """Run the stage's pipeline locally: the real definition and the project image's entrypoints."""
    local = local_home(home)
    stage = resolve_stage(stage, local, command="run")
    with reported():
        check_writable(local.root)
        config = load_stage(stage)
        resources = PipelineResources.placeholders(config)
        settings = PipelineSettings.from_stage(config, resources, tune=tune)
        definition = render_definition_cached(settings, local.cache_dir)
        engine = LocalEngine(local, ImageMap.project(resources.image_uri))
        parameters = parse_overrides(definition, param or ())
        if data is not None and INPUT_DATA_URI in parameters:
            raise ParameterError(f"--data and --param {INPUT_DATA_URI} both name the input; pass one of them")
        # Refuse before any data lands or any step runs; what runs differently from SageMaker is said.
        for note in engine.check(definition, parameters):
            err.print(f"note: {note.step}: {note}", soft_wrap=True)
        if data is not None:
            landed = land(
                local, data, schema=config.dataset, layout=config.data.layout, raw_bucket=resources.raw_bucket
            )
            parameters[INPUT_DATA_URI] = landed.uri
            read_as = "" if landed.delimiter in (None, ",") else f" (read as {landed.delimiter!r}-separated)"
            err.print(
                f"--data: {landed.records} record(s) from {data}{read_as} landed at {landed.uri} "
                f"({size_text(landed.size)}; a prefix of its own: this run reads only it)",
                soft_wrap=True,
            )
        else:
            _say_input(local, str(parameters.get(INPUT_DATA_URI) or settings.default_input_uri))
    steps = [(str(s["Name"]), str(s["Type"])) for s in iter_steps(definition["Steps"])]
    progress = _Progress(steps)
    variant = "tune" if settings.tune else "train"
    err.print(f"rookery local run: stage {stage}, {variant} variant, home {local.root}", soft_wrap=True)
    started: list[str] = []  # the execution's id, from its first event
    try:
        with (
            _sigterm_stops(),
            reported(codes={UnwritableError: 1}),
            _progress_display(progress) as show,
        ):

            def on_event(event: StepEvent) -> None:
                if not started:
                    started.append(event.execution_id)
                show(event)

            execution = engine.run(
                definition, parameters=parameters, on_event=on_event, pipeline_name=pipeline_name(config)
            )
    except KeyboardInterrupt:
        which = f"execution {started[0]}" if started else "the execution"
        err.print(f"{which} stopped: its running jobs were stopped (Ctrl-C or SIGTERM)", soft_wrap=True)
        raise typer.Exit(130) from None
    out.print(_summary(execution))
    for line in result_lines(local, execution, stage):
        out.print(line, soft_wrap=True, markup=False)
    out.print(f"execution folder: {execution.path}", soft_wrap=True)
    out.print(
        f"stored: {stored_line(stored(local, execution))}; "
        "`rookery local clean` removes old executions' intermediate data",
        soft_wrap=True,
    )
    if execution.status != "Succeeded":
        out.print(_failure_panel(execution))
        raise typer.Exit(1)


# Input objects named when a run reads the raw bucket (the rest are counted).
SHOWN_INPUTS = 5


def _say_input(local: LocalHome, uri: str) -> None:
    """A run without --data names the objects it will read; with none, it refuses before any step."""
    found = LocalS3(local).objects(uri)
    if not found:
        fail(
            f"nothing to read under {uri}: pass --data FILE (CSV or JSON lines), or ingest first "
            "(`rookery demo` lands the bundled penguins there)"
        )
    names = ", ".join(o.uri.removeprefix(uri) for o in found[:SHOWN_INPUTS])
    more = f" and {len(found) - SHOWN_INPUTS} more" if len(found) > SHOWN_INPUTS else ""
    err.print(
        f"input: {len(found)} object(s), {size_text(sum(o.size for o in found))}, under {uri}: "
        f"{names}{more} (`rookery local raw list` shows them all)",
        soft_wrap=True,
    )


# -- executions / describe -------------------------------------------------------------------------
@app.command()
def executions(home: HomeOption = None) -> None:
    """List local executions, newest first."""
    engine = LocalEngine(local_home(home), ImageMap())
    listing = engine.listing()
    found = listing.executions
    if not found and not listing.damaged:
        out.print(
            f"no executions under {engine.home.executions_dir} yet; "
            "start one with `rookery local run --stage dev`"
        )
        return
    table = Table(title="local executions", title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("pipeline", "status", "started", "time", "failed step"):
        table.add_column(column, overflow="fold")
    for execution in found:
        table.add_row(
            execution.id,
            execution.pipeline_name,
            _styled(execution.status),
            execution.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            _seconds(execution.seconds),
            execution.failed_step or "",
        )
    for damaged in listing.damaged:
        table.add_row(damaged.path.parent.name, "", _styled("Damaged"), "", "", "")
    out.print(table)
    for damaged in listing.damaged:
        err.print(f"damaged: {damaged}", markup=False, soft_wrap=True)


@app.command()
def describe(
    execution_id: Annotated[str, typer.Argument(help="execution id (see `rookery local executions`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print execution.json")] = False,
    home: HomeOption = None,
) -> None:
    """Show one execution: parameters, each step's status, timing, result or failure, and logs."""
    with reported():
        execution = LocalEngine(local_home(home), ImageMap()).execution(execution_id)
    if as_json:
        typer.echo(json.dumps(execution.to_json(), indent=2, default=str))
        return
    parameters = Table(title="parameters", title_justify="left")
    parameters.add_column("name")
    parameters.add_column("value", overflow="fold")
    for name, value in execution.parameters.items():
        parameters.add_row(name, str(value))
    logs = Table(title="logs", title_justify="left")
    logs.add_column("step")
    logs.add_column("log", overflow="fold")
    for step in execution.steps:
        host_logs = step.metrics.get("host_logs") or []  # a training job on several instances: one per host
        for host, path in zip(step.metrics.get("hosts") or [], host_logs, strict=False):
            logs.add_row(f"{step.name} ({host})", str(path))
        if step.log_path and not host_logs:
            logs.add_row(step.name, str(step.log_path))
    out.print(Group(parameters, _summary(execution), logs))
    if execution.status == "Failed":
        out.print(_failure_panel(execution))


# -- registry ---------------------------------------------------------------------------------------
FollowOption = Annotated[
    bool,
    typer.Option(
        "--follow/--no-follow",
        help="when an endpoint of the group is served, follow the deployment this change causes",
    ),
]


@app.command()
def approve(
    package: Annotated[str, typer.Argument(help="<group>/<version> or the model package ARN")],
    description: Annotated[str | None, typer.Option("--description", help="approval note")] = None,
    follow_deployment: FollowOption = True,
    home: HomeOption = None,
) -> None:
    """Approve a registered model version (what a reviewer does in SageMaker Studio).

    When ``rookery local serve`` serves an endpoint of the version's group, its deployer deploys the
    highest approved version blue/green; this command follows that deployment to its outcome
    (exit 0 when it succeeded or nothing had to change, 1 when it failed or rolled back).
    """
    _change_status(package, "Approved", description, follow_deployment, local_home(home))


@app.command()
def reject(
    package: Annotated[str, typer.Argument(help="<group>/<version> or the model package ARN")],
    description: Annotated[str | None, typer.Option("--description", help="rejection note")] = None,
    follow_deployment: FollowOption = True,
    home: HomeOption = None,
) -> None:
    """Reject a registered model version; rejecting the live version rolls the endpoint back.

    The served endpoint goes back to the highest version still approved (blue/green, like any
    deployment). Exit 1 when that failed, or when no other version is approved and the endpoint
    keeps serving the rejected one.
    """
    _change_status(package, "Rejected", description, follow_deployment, local_home(home))


def _change_status(ref: str, status: str, description: str | None, follow_it: bool, local: LocalHome) -> None:
    registry = LocalRegistry(local)
    with reported():
        check_writable(registry.root)
        changed = registry.set_status(ref, status, description=description)
        changed, written = package_written(registry, changed.ref)
    out.print(f"{changed.ref} is {changed.approval_status} ({changed.arn})", soft_wrap=True)
    if not follow_it:
        return
    served = served_endpoints(local, changed.group)
    deploying = [r for r in served if r.get("DeployOnApproval")]
    if not deploying:
        without = f" ({', '.join(str(r['EndpointName']) for r in served)} runs without deploy on approval)"
        out.print(
            f"no endpoint of {changed.group} deploys on approval here{without if served else ''}; "
            "`rookery local serve` serves the highest approved version and deploys the next approvals",
            soft_wrap=True,
        )
        return
    served = deploying
    name = str(served[0]["EndpointName"])
    out.print(
        f"endpoint {name} serves {served[0].get('ModelPackage')}; following its deployer", soft_wrap=True
    )
    try:
        code = _follow(local, name, changed.version, written)
    except KeyboardInterrupt:
        out.print(f"stopped following; the deployer carries on (`rookery local endpoint describe {name}`)")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _follow(local: LocalHome, name: str, version: int, written: int) -> int:
    """Print what the deployer does about the change; the exit code of its outcome."""
    with reported(codes={EndpointError: 1}):
        for item in follow(local, name, version, written):
            if isinstance(item, Waiting):
                if item.busy:
                    out.print(f"deployment {item.busy} is in progress; the change is decided after it ends")
            elif isinstance(item, Decided):
                decision = item.decision
                out.print(f"decision: {decision.get('Action')}: {decision.get('Reason')}", soft_wrap=True)
                if not decision.get("DeploymentId"):
                    # "hold": the endpoint keeps a version that is no longer approved; "error": undecided.
                    return 1 if decision.get("Action") in ("hold", "error") else 0
            elif isinstance(item, Step):
                if item.entry.get("Event") == "DeploymentStarted":
                    note = endpoint_view.time_scale_note(float(item.deployment.get("TimeScale") or 1))
                    if note:
                        out.print(note, style="dim", soft_wrap=True)
                out.print(endpoint_view.timeline_line(item.entry), markup=False, soft_wrap=True)
            elif isinstance(item, Finished):
                status = str(item.deployment.get("Status"))
                out.print(
                    Text.assemble(
                        "outcome: ", endpoint_view.styled(status), f": {item.deployment.get('Reason')}"
                    ),
                    soft_wrap=True,
                )
                return 0 if status == "Succeeded" else 1
    return 1


@app.command()
def packages(home: HomeOption = None) -> None:
    """List the model packages of the local registry."""
    found = LocalRegistry(local_home(home)).packages()
    table = Table(title="local model registry", title_justify="left")
    table.add_column("package", no_wrap=True)
    for column in ("status", "created", "auc", "threshold", "execution"):
        table.add_column(column, overflow="fold")
    for package in found:
        metrics = package.metrics
        auc = value_at(metrics, AUC_PATH, None)
        threshold = value_at(metrics, THRESHOLD_PATH, None)
        table.add_row(
            package.ref,
            package.approval_status,
            package.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "" if auc is None else f"{auc:.4f}",
            "" if threshold is None else f"{threshold:.4f}",
            package.execution_id or "",
        )
    out.print(table if found else "the local registry is empty; run the pipeline first (`rookery local run`)")


# -- serve / invoke ---------------------------------------------------------------------------------
def _example(url: str, name: str, region: str) -> str:
    return (
        "import boto3\n"
        f'runtime = boto3.client("sagemaker-runtime", endpoint_url="{url}", region_name="{region}",\n'
        '                       aws_access_key_id="local", aws_secret_access_key="local")\n'
        f'answer = runtime.invoke_endpoint(EndpointName="{name}", ContentType="application/json",\n'
        '                                 Accept="application/json", Body=b\'{"...": "one record"}\')\n'
        'print(answer["Body"].read().decode())'
    )


@app.command()
def serve(
    *,
    package: Annotated[
        str | None,
        typer.Argument(help="<group>/<version> or ARN (default: the stage's latest Approved version)"),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage",
            "-s",
            help="stage name (default: the package's stage, else the latest local run's stage)",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="endpoint name (default: <prefix>-<stage>-local)")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port on 127.0.0.1 (0: any free port)")] = 8080,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            help="divide every deployment wait and alarm period by this (local only; 1 = real time)",
        ),
    ] = 1.0,
    deploy_on_approval: Annotated[
        bool,
        typer.Option(
            "--deploy-on-approval/--no-deploy-on-approval",
            help="deploy the group's highest approved version whenever approvals change",
        ),
    ] = True,
    allow_unapproved: Annotated[
        bool,
        typer.Option("--allow-unapproved", help="serve a version that is not Approved (with a warning)"),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Serve a model version as a SageMaker Runtime compatible endpoint until Ctrl-C.

    With the stage's serving settings: data capture into the local raw bucket, and deploy on
    approval (a newer approved version replaces the live one blue/green with the stage's policy and
    rollback alarms; rejecting the live version rolls back).
    """
    local = local_home(home)
    registry = LocalRegistry(local)
    with reported():
        given = registry.get(package) if package else None
    if stage is None and given is not None:
        stage = stage_of_group(given.group)
    stage = resolve_stage(stage, local, command="serve")
    with reported():
        check_writable(local.endpoints_dir)
        config = load_stage(stage)
        if given is not None and given.group != model_package_group_name(config):
            fail(
                f"{given.ref} belongs to group {given.group}, not stage {stage}'s "
                f"{model_package_group_name(config)}; drop --stage or name a version of that group"
            )
        resources = PipelineResources.placeholders(config)
        settings = EndpointSettings.from_stage(config, raw_bucket=resources.raw_bucket, time_scale=time_scale)
        chosen = given or registry.latest_approved(model_package_group_name(config))
        if chosen.approval_status != "Approved":
            if not allow_unapproved:
                fail(
                    f"{chosen.ref} is {chosen.approval_status}, not Approved: approve it first "
                    f"(`rookery local approve {chosen.ref}`), or pass --allow-unapproved to serve it anyway"
                )
            err.print(
                f"WARNING: serving {chosen.ref}, which is {chosen.approval_status}: no one has approved it",
                soft_wrap=True,
            )
        endpoint_name = name or local_endpoint_name(config, "local")
        image = str(chosen.inference_spec.get("image"))
        endpoint = LocalEndpoint.start(
            local, ImageMap.project(image), chosen, name=endpoint_name, port=port, settings=settings
        )
    # SIGTERM (kill, a supervisor) must stop the model server too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    deployer = LocalDeployer(endpoint, registry, chosen.group) if deploy_on_approval else None
    shown: dict[str, int] = {}

    def show_progress(changed: LocalEndpoint) -> None:
        deployment = changed.current or (changed.deployments[-1] if changed.deployments else None)
        if deployment is None:
            return
        entries = deployment.to_json()["Timeline"]
        for entry in entries[shown.get(deployment.id, 0) :]:
            err.print(endpoint_view.timeline_line(entry), markup=False, highlight=False, soft_wrap=True)
        shown[deployment.id] = len(entries)

    endpoint.on_change(show_progress)
    with endpoint:
        out.print(
            f"endpoint {endpoint.name} serves {chosen.ref} ({chosen.approval_status})\n"
            f"URL: {endpoint.url}  (POST /endpoints/{endpoint.name}/invocations)\n",
            soft_wrap=True,
        )
        note = endpoint_view.time_scale_note(time_scale)
        if note:
            out.print(note, soft_wrap=True)
        if endpoint.capture is not None:
            out.print(
                f"data capture: {endpoint.capture.settings.sampling_percent}% of invocations "
                f"to {endpoint.capture.destination}",
                soft_wrap=True,
            )
        if deployer is not None:
            deployer.start()
            out.print(
                f"deploy on approval: approvals of {chosen.group} deploy blue/green "
                f"(`rookery local approve {chosen.group}/<version>`)",
                soft_wrap=True,
            )
        out.print("call it with boto3:", soft_wrap=True)
        out.print(_example(endpoint.url, endpoint.name, config.region), soft_wrap=True, markup=False)
        out.print(f"\nor: rookery local invoke --endpoint {endpoint.name} records.json", soft_wrap=True)
        out.print("Ctrl-C stops the endpoint.")
        with contextlib.suppress(KeyboardInterrupt):
            # Waits a second at a time: the kernel may hand SIGTERM to any of the endpoint's threads, and
            # its handler then runs here only when this wait returns (an unbounded one never would).
            while True:
                time.sleep(1)
        endpoint.stop()  # first: a deployment in progress is abandoned, traffic stays on the old fleet
        if deployer is not None:
            deployer.stop()
    out.print(f"endpoint {endpoint.name} stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """Inside the block SIGTERM (a CI timeout, `timeout`, kill) stops the work as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; a caller on another thread keeps its own handling
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _content_type(file: str) -> str:
    suffix = Path(file).suffix.lower()
    return {".csv": "text/csv", ".jsonl": "application/jsonlines", ".ndjson": "application/jsonlines"}.get(
        suffix, "application/json"
    )


@app.command()
def invoke(
    file: Annotated[str, typer.Argument(help="request body file, or - for stdin")],
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="endpoint name (default: the newest running)")
    ] = None,
    content_type: Annotated[
        str | None,
        typer.Option("--content-type", help="default: from the file name (.csv, .jsonl, else JSON)"),
    ] = None,
    accept: Annotated[
        str | None, typer.Option("--accept", help="answer type (default: the model's choice)")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Call a running local endpoint through boto3's sagemaker-runtime client, as an application would."""
    with reported(codes={InvocationError: 1}):
        record = find_endpoint(local_home(home), endpoint)
        try:
            body = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
        answer = invoke_endpoint(
            record, body, content_type=content_type or _content_type(file), accept=accept
        )
    text = answer.decode("utf-8", errors="replace")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


# -- monitor --------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _monitoring_table(run: MonitoringRun) -> Table:
    report = run.report
    table = Table(title=f"{run.kind} of {run.endpoint}: {report['status']} ({report['records']} records)")
    if run.kind == mon.DATA_QUALITY:
        table.add_column("feature", no_wrap=True)
        for column in ("baseline", "current", "distance", "threshold"):
            table.add_column(column)
        table.add_column("verdict", no_wrap=True)
        for row in report["features"]:
            method = "PSI" if row["method"] == mon.PSI else "L-inf"
            verdict = Text(row["verdict"], style="bold red" if row["violations"] else "green")
            distance = "-" if row["distance"] is None else f"{method} {row['distance']:.4f}"
            table.add_row(
                row["feature"], row["baseline"], row["current"], distance, _number(row["threshold"]), verdict
            )
    else:
        table.add_column("metric", no_wrap=True)
        for column in ("baseline", "current", "threshold"):
            table.add_column(column)
        table.add_column("verdict", no_wrap=True)
        for row in report["metrics"]:
            failed = row["verdict"] == mon.LESS_THAN_THRESHOLD
            verdict = Text(row["verdict"], style="bold red" if failed else "green")
            table.add_row(
                row["metric"],
                _number(row["baseline"]),
                _number(row["current"]),
                _number(row["threshold"]),
                verdict,
            )
    return table


@app.command()
def monitor(
    *,
    stage: StageOption = "dev",
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="endpoint name (default: <prefix>-<stage>-local)")
    ] = None,
    package: Annotated[
        str | None,
        typer.Option(
            "--package",
            help="<group>/<version> whose baseline to use (default: the version the endpoint serves while "
            "it runs, else the latest Approved)",
        ),
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="data-quality, model-quality or all")] = "all",
    home: HomeOption = None,
) -> None:
    """Run the monitoring jobs over a local endpoint's captured traffic (and ground truth).

    Writes each job's reports under the local artifacts bucket and prints a row per feature (data
    quality) or metric (model quality). Exit codes: 0 no violation (or no traffic), 1 a violation
    was found, 2 a usage or config error, or a job that could not run.
    """
    local = local_home(home)
    kinds = list(mon.MONITOR_KINDS) if kind == "all" else [kind]
    with reported():
        if any(k not in mon.MONITOR_KINDS for k in kinds):
            raise typer.BadParameter(f"--kind {kind!r}: use one of {[*mon.MONITOR_KINDS, 'all']}")
        config = load_stage(stage)
        resources = PipelineResources.placeholders(config)
        name = endpoint or local_endpoint_name(config, "local")
        chosen = (
            LocalRegistry(local).get(package)
            if package
            else monitored_package(local, name, model_package_group_name(config))
        )
        runs = [
            run_monitoring(
                local,
                config,
                chosen,
                kind=k,
                endpoint=name,
                raw_bucket=resources.raw_bucket,
                artifacts_bucket=resources.artifacts_bucket,
            )
            for k in kinds
        ]
    for run in runs:
        out.print(_monitoring_table(run))
        for issue in run.report["files"]["issues"]:
            out.print(
                f"  [yellow]capture issue[/] {issue['file']}: {issue['problem']} ({issue['lines']} line(s))"
            )
        if run.report.get("reason"):
            out.print(f"  {run.report['reason']}")
        out.print(f"  reports: {run.output_uri}", soft_wrap=True)
    if any(run.failed for run in runs):
        raise typer.Exit(1)


# -- endpoint -------------------------------------------------------------------------------------
endpoint_app = typer.Typer(no_args_is_help=True)
app.add_typer(endpoint_app, name="endpoint", help="Inspect the local endpoints (as DescribeEndpoint).")


@endpoint_app.command("describe")
def endpoint_describe(
    name: Annotated[str | None, typer.Argument(help="endpoint name (default: the newest served)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
    home: HomeOption = None,
) -> None:
    """Show a served endpoint: status, variant, serving package, deployment config, last deployment."""
    with reported():
        record = find_endpoint(local_home(home), name)
    if as_json:
        typer.echo(json.dumps(record, indent=2, default=str))
        return
    out.print(endpoint_view.describe(record))
