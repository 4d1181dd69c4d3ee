"""``rookery pipeline``: render, validate, upsert, start and watch the SageMaker pipeline.

``render`` and ``validate`` work offline. ``upsert``, ``start``, ``status`` and ``wait`` call
SageMaker through ``pipelines.aws`` with ``--profile``, ``--region`` and ``--endpoint-url``; any AWS
or credential problem is reported in one line (exit code 2), never as a traceback.
Exit codes: 0 success, 1 findings or a failed execution, 2 a usage, config or AWS error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from pipelines.aws import (
    Change,
    Connection,
    DefinitionRefusedError,
    ExecutionState,
    StepState,
    changes,
    execution_state,
    latest_execution,
    start_execution,
    upsert_pipeline,
    wait_for_execution,
)
from pipelines.definition import iter_steps
from pipelines.findings import CONTROLS, Finding
from pipelines.settings import PipelineResources, PipelineSettings, SettingsError, describe
from pipelines.validate import expected_for, load_definition, validate_definition
from rookery.cli.errors import err, fail, reported
from rookery.cli.options import (
    EndpointUrlOption,
    OptionalStageOption,
    ParamOption,
    ProfileOption,
    RegionOption,
    StageOption,
    TuneOption,
)
from stage import Stage, load_stage
from stage.names import pipeline_name

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)

NameOption = Annotated[
    str | None, typer.Option("--name", help="pipeline name (default: <prefix>-<stage>-pipeline)")
]
ExecutionArgument = Annotated[str | None, typer.Argument(help="execution ARN (default: the latest)")]
ResourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--resources",
        help="JSON file of PipelineResources fields (deployed ARNs, names); default: offline placeholders",
    ),
]


def _resources(path: Path | None, stage: Stage) -> PipelineResources:
    return PipelineResources.placeholders(stage) if path is None else _read_resources(path)


def _read_resources(path: Path) -> PipelineResources:
    try:
        return PipelineResources.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read --resources {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise SettingsError(f"--resources {path}: {describe(exc)}") from None


def _stage(name: str | None) -> Stage | None:
    return load_stage(name) if name else None


def _connection(
    stage: Stage | None, profile: str | None, region: str | None, endpoint_url: str | None
) -> Connection:
    """Where the SageMaker calls go: --region, else the stage's region."""
    return Connection(profile, region or (stage.region if stage else None), endpoint_url)


def _pipeline(name: str | None, stage: Stage | None) -> str:
    if name:
        return name
    if stage is None:
        fail("name the pipeline: pass --name NAME or --stage STAGE")
    return pipeline_name(stage)


# -- render / validate (offline) --------------------------------------------------------------------
@app.command()
def render(
    *,
    stage: StageOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write ('-' for stdout)")],
    tune: TuneOption = None,
    spot: Annotated[
        bool | None, typer.Option("--spot/--no-spot", help="default: ml.training.use_spot")
    ] = None,
    resources: ResourcesOption = None,
) -> None:
    """Write the stage's pipeline definition (JSON) without AWS."""
    with reported():
        config = load_stage(stage)
        settings = PipelineSettings.from_stage(config, _resources(resources, config), tune=tune, spot=spot)
        from pipelines.builder import render_json  # noqa: PLC0415 - the SDK import, only for render

        text = render_json(settings)
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    steps = [s["Name"] for s in json.loads(text)["Steps"]]
    variant = "tune" if settings.tune else "train"
    spot_state = "on" if settings.spot else "off"
    err.print(
        f"wrote {output}: stage {stage}, {variant} variant, spot {spot_state}, steps {' -> '.join(steps)}",
        soft_wrap=True,
    )


def _findings_table(title: str, findings: Sequence[Finding], reason: bool = False) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in ("step", "field", "control", "problem", "reason" if reason else "fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f.step, f.field, f.control, f.message, f.acknowledged if reason else f.fix)
    return table


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="pipeline definition JSON (from `rookery pipeline render`)")],
    resources: Annotated[
        Path | None,
        typer.Option(
            "--resources",
            help="PipelineResources JSON the jobs must use exactly; default: settings present, any value",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print findings as JSON")] = False,
) -> None:
    """Check a definition: perimeter controls T1-T6, API request shapes, references. Exit 1 on any finding."""
    with reported():
        definition = load_definition(file)
        expected = None if resources is None else expected_for(_read_resources(resources))
        findings = validate_definition(definition, expected)
    blocking = [f for f in findings if f.blocking]
    accepted = [f for f in findings if not f.blocking]
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        if accepted:
            out.print(_findings_table("acknowledged exceptions", accepted, reason=True))
        if blocking:
            out.print(_findings_table(f"{len(blocking)} finding(s) in {file}", blocking))
        else:
            steps = sum(1 for _ in iter_steps(definition.get("Steps", [])))
            checked = ", ".join(CONTROLS)
            out.print(f"[green]OK[/green] {file}: {steps} steps pass {checked}", soft_wrap=True)
    if blocking:
        raise typer.Exit(1)


# -- AWS: upsert / start / status / wait -------------------------------------------------------------
@app.command()
def upsert(
    file: Annotated[Path, typer.Argument(help="pipeline definition JSON")],
    *,
    stage: OptionalStageOption = None,
    name: NameOption = None,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="pipeline role (default: the jobs' role)")
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
) -> None:
    """Create the pipeline, or update it to this definition. Refuses a definition with findings."""
    with reported():
        definition = load_definition(file)
        config = _stage(stage)
        connection, pipeline = _connection(config, profile, region, endpoint_url), _pipeline(name, config)
        try:
            upserted = upsert_pipeline(connection, pipeline, definition, role_arn=role_arn)
        except DefinitionRefusedError as exc:
            fail(f"{file} has {len(exc.findings)} finding(s); see `rookery pipeline validate {file}`", code=1)
    out.print(f"{'created' if upserted.created else 'updated'} {upserted.arn}", soft_wrap=True)


@app.command()
def start(
    *,
    stage: OptionalStageOption = None,
    name: NameOption = None,
    param: ParamOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
) -> None:
    """Start an execution; --param values are checked against the deployed definition first."""
    with reported():
        config = _stage(stage)
        connection = _connection(config, profile, region, endpoint_url)
        arn = start_execution(connection, _pipeline(name, config), param or ())
    out.print(f"started {arn}", soft_wrap=True)


def _style(status: str) -> str:
    return {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Executing": "cyan"}.get(
        status, "white"
    )


def _status_table(steps: Sequence[StepState]) -> Table:
    table = Table(title_justify="left")
    for column in ("step", "status", "failure reason"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(step.name, f"[{_style(step.status)}]{step.status}[/]", step.reason)
    return table


@app.command()
def status(
    execution: ExecutionArgument = None,
    *,
    stage: OptionalStageOption = None,
    name: NameOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
) -> None:
    """Show an execution's status and each step's status."""
    with reported():
        config = _stage(stage)
        connection = _connection(config, profile, region, endpoint_url)
        arn = execution or latest_execution(connection, _pipeline(name, config))
        state = execution_state(connection, arn)
    out.print(f"{state.arn}: [{_style(state.status)}]{state.status}[/]", soft_wrap=True)
    if state.steps is not None:
        out.print(_status_table(state.steps))
    if state.note:
        out.print(f"[yellow]note:[/yellow] {state.note}; showing the execution status only", soft_wrap=True)
    if state.reason:
        out.print(f"[red]failure:[/red] {state.reason}", soft_wrap=True)


def _change_line(change: Change) -> str:
    status = f"[{_style(change.status)}]{change.status}[/]"
    if change.step is None:
        return f"execution {status}"
    return f"{change.step} {status}{f': {change.reason}' if change.reason else ''}"


@app.command()
def wait(
    execution: ExecutionArgument = None,
    *,
    stage: OptionalStageOption = None,
    name: NameOption = None,
    poll: Annotated[float, typer.Option("--poll", min=0, help="seconds between checks")] = 30.0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="give up after this many seconds")
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
) -> None:
    """Follow an execution, printing each step's status as it changes; exit 1 unless it succeeds."""

    def emit(line: str) -> None:
        out.print(f"{dt.datetime.now(dt.UTC):%H:%M:%S}  {line}", soft_wrap=True)

    def show(before: ExecutionState | None, after: ExecutionState) -> None:
        if before is None and after.note:
            emit(f"[yellow]note:[/yellow] {after.note}; following the execution status only")
        for change in changes(before, after):
            emit(_change_line(change))

    with reported():
        config = _stage(stage)
        connection = _connection(config, profile, region, endpoint_url)
        arn = execution or latest_execution(connection, _pipeline(name, config))
        emit(f"following {arn}")
        final = wait_for_execution(connection, arn, poll_seconds=poll, timeout_seconds=timeout, on_poll=show)
    if final.status == "Succeeded":
        return
    if not final.finished:
        fail(f"still {final.status} after {timeout:g} s; `rookery pipeline wait {arn}` resumes", code=1)
    failed = final.failed_step
    where = f" at step {failed.name}" if failed else ""
    reason = final.reason or (failed.reason if failed else "no reason given")
    fail(f"execution {final.status}{where}: {reason}", code=1)
