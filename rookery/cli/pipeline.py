"""``rookery pipeline``: render, validate, upsert, start and watch the SageMaker pipeline.

``render`` and ``validate`` work offline. ``upsert``, ``start``, ``status`` and ``wait`` call
SageMaker through boto3 with ``--profile``, ``--region`` and ``--endpoint-url``; any AWS or
credential problem is reported in one line (exit code 2), never as a traceback.
Exit codes: 0 success, 1 findings or a failed execution, 2 a usage, config or AWS error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from pipelines.findings import CONTROLS, Finding
from pipelines.parameters import ParameterError, parse_overrides
from pipelines.settings import PipelineResources, PipelineSettings, SettingsError, describe
from pipelines.validate import DefinitionError, expected_for, load_definition, validate_definition
from rookery.cli.errors import err, fail, one_line_errors
from stage import ConfigError, Stage, load_stage
from stage.names import pipeline_name

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False)

TERMINAL = ("Succeeded", "Failed", "Stopped")
# Error codes an endpoint returns for an operation it does not implement (emulators, moto server).
_UNSUPPORTED = ("UnknownOperationException", "InvalidAction", "NotImplemented", "NotImplementedException")

StageOption = Annotated[
    str | None, typer.Option("--stage", "-s", help="stage name (infra/stages/<stage>.toml)")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="pipeline name (default: <prefix>-<stage>-pipeline)")
]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="AWS profile", envvar="AWS_PROFILE")]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the stage's region)")
]
EndpointOption = Annotated[str | None, typer.Option("--endpoint-url", help="SageMaker endpoint URL override")]
ResourcesOption = Annotated[
    Path | None,
    typer.Option(
        "--resources",
        help="JSON file of PipelineResources fields (deployed ARNs, names); default: offline placeholders",
    ),
]


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every expected failure (config, input, AWS, credentials) becomes one line and exit code 2."""
    try:
        with one_line_errors(ConfigError, SettingsError, DefinitionError, ParameterError):
            yield
    except NoCredentialsError:
        fail("no AWS credentials found: pass --profile, set AWS_PROFILE, or sign in (aws sso login)")
    except PartialCredentialsError as exc:
        fail(f"incomplete AWS credentials ({exc}); check the profile or environment")
    except ProfileNotFound as exc:
        fail(f"{exc}; list profiles with `aws configure list-profiles`")
    except NoRegionError:
        fail("no AWS region: pass --region or --stage, or set AWS_REGION")
    except EndpointConnectionError as exc:
        where = exc.kwargs.get("endpoint_url", "the SageMaker endpoint")
        fail(f"cannot reach {where}: check --endpoint-url and the network")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        fail(f"{exc.operation_name}: {error.get('Code', 'Error')}: {error.get('Message', exc)}")
    except BotoCoreError as exc:
        fail(str(exc))


def _stage(name: str | None) -> Stage | None:
    return load_stage(name) if name else None


def _resources(path: Path | None, stage: Stage) -> PipelineResources:
    return PipelineResources.placeholders(stage) if path is None else _read_resources(path)


def _read_resources(path: Path) -> PipelineResources:
    try:
        return PipelineResources.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read --resources {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise SettingsError(f"--resources {path}: {describe(exc)}") from None


def _pipeline(name: str | None, stage: Stage | None) -> str:
    if name:
        return name
    if stage is None:
        fail("name the pipeline: pass --name NAME or --stage STAGE")
    return pipeline_name(stage)


def sagemaker_client(profile: str | None, region: str | None, endpoint_url: str | None) -> Any:
    """A SageMaker client honouring --profile, --region and --endpoint-url (the one AWS entry point)."""
    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client("sagemaker", endpoint_url=endpoint_url)


def _connect(
    stage: str | None, profile: str | None, region: str | None, endpoint_url: str | None
) -> tuple[Stage | None, Any]:
    """The named stage (if any) and a SageMaker client in --region, else in the stage's region."""
    config = _stage(stage)
    return config, sagemaker_client(profile, region or (config.region if config else None), endpoint_url)


# -- render / validate (offline) --------------------------------------------------------------------
@app.command()
def render(
    *,
    stage: Annotated[str, typer.Option("--stage", "-s", help="stage name (infra/stages/<stage>.toml)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write ('-' for stdout)")],
    tune: Annotated[bool | None, typer.Option("--tune/--no-tune", help="default: ml.tuning.enabled")] = None,
    spot: Annotated[
        bool | None, typer.Option("--spot/--no-spot", help="default: ml.training.use_spot")
    ] = None,
    resources: ResourcesOption = None,
) -> None:
    """Write the stage's pipeline definition (JSON) without AWS."""
    with _one_line_errors():
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
    with _one_line_errors():
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
            steps = sum(1 for _ in _all_steps(definition))
            checked = ", ".join(CONTROLS)
            out.print(f"[green]OK[/green] {file}: {steps} steps pass {checked}", soft_wrap=True)
    if blocking:
        raise typer.Exit(1)


def _all_steps(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    from pipelines.definition import iter_steps  # noqa: PLC0415 - keeps the import list of this module short

    return iter_steps(definition.get("Steps", []))


# -- AWS: upsert / start / status / wait -------------------------------------------------------------
def _role_of(definition: Mapping[str, Any]) -> str | None:
    roles = set()
    for step in _all_steps(definition):
        args = step.get("Arguments", {})
        for key in ("RoleArn", "ExecutionRoleArn"):
            if isinstance(args.get(key), str):
                roles.add(args[key])
        role = args.get("TrainingJobDefinition", {}).get("RoleArn") if isinstance(args, Mapping) else None
        if isinstance(role, str):
            roles.add(role)
    return roles.pop() if len(roles) == 1 else None


def _missing_pipeline(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") == "ResourceNotFound" or (
        error.get("Code") == "ValidationException" and ("not find" in message or "does not exist" in message)
    )


@app.command()
def upsert(
    file: Annotated[Path, typer.Argument(help="pipeline definition JSON")],
    *,
    stage: StageOption = None,
    name: NameOption = None,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", help="pipeline role (default: the jobs' role)")
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Create the pipeline, or update it to this definition. Refuses a definition with findings."""
    with _one_line_errors():
        definition = load_definition(file)
        blocking = [f for f in validate_definition(definition) if f.blocking]
        if blocking:
            fail(f"{file} has {len(blocking)} finding(s); see `rookery pipeline validate {file}`", code=1)
        config, client = _connect(stage, profile, region, endpoint_url)
        pipeline = _pipeline(name, config)
        role = role_arn or _role_of(definition)
        if role is None:
            fail("the definition's jobs do not share one role; pass --role-arn")
        body = json.dumps(definition)
        try:
            client.describe_pipeline(PipelineName=pipeline)
            exists = True
        except ClientError as exc:
            if not _missing_pipeline(exc):
                raise
            exists = False
        if exists:
            arn = client.update_pipeline(PipelineName=pipeline, PipelineDefinition=body, RoleArn=role)[
                "PipelineArn"
            ]
        else:
            # Same name and definition -> same token: a retried create is not a second pipeline.
            token = hashlib.sha256(f"{pipeline}\n{body}".encode()).hexdigest()[:64]
            arn = client.create_pipeline(
                PipelineName=pipeline, PipelineDefinition=body, RoleArn=role, ClientRequestToken=token
            )["PipelineArn"]
    out.print(f"{'updated' if exists else 'created'} {arn}", soft_wrap=True)


@app.command()
def start(
    *,
    stage: StageOption = None,
    name: NameOption = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="NAME=VALUE pipeline parameter (repeat)")
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Start an execution; --param values are checked against the deployed definition first."""
    with _one_line_errors():
        config, client = _connect(stage, profile, region, endpoint_url)
        pipeline = _pipeline(name, config)
        deployed = json.loads(client.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"])
        parameters = parse_overrides(deployed, param or [])
        arn = client.start_pipeline_execution(
            PipelineName=pipeline, PipelineParameters=parameters, ClientRequestToken=uuid.uuid4().hex
        )["PipelineExecutionArn"]
    out.print(f"started {arn}", soft_wrap=True)


@dataclass(frozen=True)
class StepState:
    name: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class ExecutionState:
    arn: str
    status: str
    reason: str
    steps: tuple[StepState, ...] | None  # None: the endpoint cannot list steps
    note: str = ""


def _sort_key(step: Mapping[str, Any]) -> dt.datetime:
    started = step.get("StartTime")
    return started if isinstance(started, dt.datetime) else dt.datetime.max.replace(tzinfo=dt.UTC)


def _unsupported(exc: ClientError) -> bool:
    """The endpoint does not implement the operation: an error code saying so, or an HTTP 500 that
    carries no AWS error at all (botocore then uses the status as the code). moto's server answers
    an operation it lacks that way; SageMaker's own 500s name an error (InternalFailure)."""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _UNSUPPORTED or (status == 500 and code == "500")


def fetch_state(client: Any, arn: str) -> ExecutionState:
    """The execution's status and, where the endpoint implements it, each step's status."""
    described = client.describe_pipeline_execution(PipelineExecutionArn=arn)
    status, reason = described["PipelineExecutionStatus"], described.get("FailureReason") or ""
    raw: list[Mapping[str, Any]] = []
    try:
        kwargs: dict[str, str] = {"PipelineExecutionArn": arn}
        while True:
            page = client.list_pipeline_execution_steps(**kwargs)
            raw.extend(page.get("PipelineExecutionSteps", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except NotImplementedError:  # moto raises this for operations it does not implement
        return ExecutionState(
            arn, status, reason, None, "the endpoint does not implement ListPipelineExecutionSteps"
        )
    except ClientError as exc:
        if not _unsupported(exc):
            raise
        return ExecutionState(
            arn, status, reason, None, "the endpoint does not implement ListPipelineExecutionSteps"
        )
    steps = tuple(
        StepState(s.get("StepName", "?"), s.get("StepStatus", "?"), s.get("FailureReason") or "")
        for s in sorted(raw, key=_sort_key)
    )
    return ExecutionState(arn, status, reason, steps)


def _latest_execution(client: Any, pipeline: str) -> str:
    summaries = client.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending"
    )
    executions = summaries.get("PipelineExecutionSummaries", [])
    if not executions:
        fail(f"pipeline {pipeline} has no executions; start one with `rookery pipeline start`")
    return str(executions[0]["PipelineExecutionArn"])


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


def _resolve_execution(
    execution: str | None,
    *,
    stage: str | None,
    name: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
) -> tuple[Any, str]:
    config, client = _connect(stage, profile, region, endpoint_url)
    if execution:
        return client, execution
    return client, _latest_execution(client, _pipeline(name, config))


@app.command()
def status(
    execution: Annotated[str | None, typer.Argument(help="execution ARN (default: the latest)")] = None,
    *,
    stage: StageOption = None,
    name: NameOption = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Show an execution's status and each step's status."""
    with _one_line_errors():
        client, arn = _resolve_execution(
            execution, stage=stage, name=name, profile=profile, region=region, endpoint_url=endpoint_url
        )
        state = fetch_state(client, arn)
    out.print(f"{state.arn}: [{_style(state.status)}]{state.status}[/]", soft_wrap=True)
    if state.steps is not None:
        out.print(_status_table(state.steps))
    if state.note:
        out.print(f"[yellow]note:[/yellow] {state.note}; showing the execution status only", soft_wrap=True)
    if state.reason:
        out.print(f"[red]failure:[/red] {state.reason}", soft_wrap=True)


def changes(before: ExecutionState | None, after: ExecutionState) -> list[str]:
    """One line per step (or execution) whose status differs from ``before``."""
    lines = []
    known = {s.name: s.status for s in (before.steps or ())} if before else {}
    for step in after.steps or ():
        if known.get(step.name) != step.status:
            detail = f": {step.reason}" if step.reason else ""
            lines.append(f"{step.name} [{_style(step.status)}]{step.status}[/]{detail}")
    if before is None or before.status != after.status:
        lines.append(f"execution [{_style(after.status)}]{after.status}[/]")
    return lines


def watch(
    client: Any,
    arn: str,
    *,
    poll_seconds: float,
    timeout_seconds: float | None,
    emit: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ExecutionState:
    """Poll until the execution ends (or the timeout passes), emitting each status change."""
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    state: ExecutionState | None = None
    while True:
        current = fetch_state(client, arn)
        if state is None and current.note:
            emit(f"[yellow]note:[/yellow] {current.note}; following the execution status only")
        for line in changes(state, current):
            emit(line)
        state = current
        if state.status in TERMINAL or (deadline is not None and clock() >= deadline):
            return state
        sleep(poll_seconds)


@app.command()
def wait(
    execution: Annotated[str | None, typer.Argument(help="execution ARN (default: the latest)")] = None,
    *,
    stage: StageOption = None,
    name: NameOption = None,
    poll: Annotated[float, typer.Option("--poll", min=0, help="seconds between checks")] = 30.0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="give up after this many seconds")
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Follow an execution, printing each step's status as it changes; exit 1 unless it succeeds."""

    def emit(line: str) -> None:
        out.print(f"{dt.datetime.now(dt.UTC):%H:%M:%S}  {line}", soft_wrap=True)

    with _one_line_errors():
        client, arn = _resolve_execution(
            execution, stage=stage, name=name, profile=profile, region=region, endpoint_url=endpoint_url
        )
        emit(f"following {arn}")
        final = watch(client, arn, poll_seconds=poll, timeout_seconds=timeout, emit=emit)
    if final.status == "Succeeded":
        return
    if final.status not in TERMINAL:
        fail(f"still {final.status} after {timeout:g} s; `rookery pipeline wait {arn}` resumes", code=1)
    failed = [s for s in final.steps or () if s.status == "Failed"]
    where = f" at step {failed[0].name}" if failed else ""
    reason = final.reason or (failed[0].reason if failed else "no reason given")
    fail(f"execution {final.status}{where}: {reason}", code=1)
