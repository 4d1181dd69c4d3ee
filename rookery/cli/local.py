"""``rookery local``: run the stage's pipeline on this machine, inspect executions, approve, serve, invoke.

``run`` renders the stage's definition (offline placeholders; the project image stands for its
ECR URI), optionally lands ``--data`` in the local raw bucket, and executes it with the local
engine, showing each step live. Exit codes: 0 the execution succeeded (or the command did its
job), 1 the execution failed or the model answered with an error, 2 a usage, config or
definition error (nothing ran).
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

from emulators.firehose import land
from emulators.sagemaker import (
    Execution,
    ImageMap,
    LocalEndpoint,
    LocalEngine,
    LocalRegistry,
    StepEvent,
)
from emulators.sagemaker_runtime.client import InvocationError, invoke_endpoint
from emulators.sagemaker_runtime.endpoint import find_endpoint
from pipelines.cache import render_definition_cached
from pipelines.definition import iter_steps
from pipelines.parameters import INPUT_DATA_URI, ParameterError, parse_overrides
from pipelines.settings import PipelineResources, PipelineSettings, model_package_group_name, pipeline_name
from rookery.cli.errors import err, fail, reported
from rookery.cli.options import HomeOption, ParamOption, StageOption, TuneOption, local_home
from stage import load_stage

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
    stage: StageOption,
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
    with reported():
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
            err.print(
                f"--data: {landed.records} record(s) from {data} landed at {landed.uri}", soft_wrap=True
            )
    steps = [(str(s["Name"]), str(s["Type"])) for s in iter_steps(definition["Steps"])]
    progress = _Progress(steps)
    variant = "tune" if settings.tune else "train"
    err.print(f"rookery local run: stage {stage}, {variant} variant, home {local.root}", soft_wrap=True)
    with reported(), _progress_display(progress) as on_event:
        execution = engine.run(
            definition, parameters=parameters, on_event=on_event, pipeline_name=pipeline_name(config)
        )
    out.print(_summary(execution))
    out.print(f"execution folder: {execution.path}", soft_wrap=True)
    if execution.status != "Succeeded":
        out.print(_failure_panel(execution))
        raise typer.Exit(1)
    registered = [s for s in execution.steps if s.type == "RegisterModel" and s.status == "Succeeded"]
    for step in registered:
        ref = f"{step.properties.get('ModelPackageGroupName')}/{step.properties.get('ModelPackageVersion')}"
        out.print(f"registered {ref}: approve with `rookery local approve {ref}`, then `rookery local serve`")


# -- executions / describe -------------------------------------------------------------------------
@app.command()
def executions(home: HomeOption = None) -> None:
    """List local executions, newest first."""
    engine = LocalEngine(local_home(home), ImageMap())
    found = engine.executions()
    if not found:
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
    out.print(table)


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
        if step.log_path:
            logs.add_row(step.name, str(step.log_path))
    out.print(Group(parameters, _summary(execution), logs))
    if execution.status == "Failed":
        out.print(_failure_panel(execution))


# -- registry ---------------------------------------------------------------------------------------
@app.command()
def approve(
    package: Annotated[str, typer.Argument(help="<group>/<version> or the model package ARN")],
    description: Annotated[str | None, typer.Option("--description", help="approval note")] = None,
    home: HomeOption = None,
) -> None:
    """Approve a registered model version (what a reviewer does in SageMaker Studio)."""
    with reported():
        approved = LocalRegistry(local_home(home)).approve(package, description=description)
    out.print(f"{approved.ref} is Approved ({approved.arn})", soft_wrap=True)


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
        auc = (metrics.get("binary_classification_metrics", {}).get("auc") or {}).get("value")
        threshold = (metrics.get("decision_threshold") or {}).get("value")
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
    package: Annotated[
        str | None,
        typer.Argument(help="<group>/<version> or ARN (default: the stage's latest Approved version)"),
    ] = None,
    stage: StageOption = "dev",
    name: Annotated[
        str | None, typer.Option("--name", help="endpoint name (default: <prefix>-<stage>-local)")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port on 127.0.0.1 (0: any free port)")] = 8080,
    home: HomeOption = None,
) -> None:
    """Serve a model version as a SageMaker Runtime compatible endpoint until Ctrl-C."""
    local = local_home(home)
    with reported():
        config = load_stage(stage)
        registry = LocalRegistry(local)
        chosen = (
            registry.get(package) if package else registry.latest_approved(model_package_group_name(config))
        )
        endpoint_name = name or f"{config.qualifier}-local"
        image = str(chosen.inference_spec.get("image"))
        endpoint = LocalEndpoint.start(local, ImageMap.project(image), chosen, name=endpoint_name, port=port)
    # SIGTERM (kill, a supervisor) must stop the model server too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    with endpoint:
        out.print(
            f"endpoint {endpoint.name} serves {chosen.ref} ({chosen.approval_status})\n"
            f"URL: {endpoint.url}  (POST /endpoints/{endpoint.name}/invocations)\n",
            soft_wrap=True,
        )
        out.print("call it with boto3:", soft_wrap=True)
        out.print(_example(endpoint.url, endpoint.name, config.region), soft_wrap=True, markup=False)
        out.print(f"\nor: rookery local invoke --endpoint {endpoint.name} records.json", soft_wrap=True)
        out.print("Ctrl-C stops the endpoint.")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    out.print(f"endpoint {endpoint.name} stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


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
