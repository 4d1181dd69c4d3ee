"""``rookery local raw list|remove`` (the local raw bucket) and ``rookery local clean`` (old
executions' intermediate data)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3, S3Object
from emulators.sagemaker.storage import Stored, remove_intermediate
from pipelines.settings import PipelineResources
from rookery.cli.errors import fail, reported
from rookery.cli.options import HomeOption, OptionalStageOption, local_home
from rookery.cli.stages import resolve_stage
from stage import load_stage

out = Console(highlight=False)
raw_app = typer.Typer(no_args_is_help=True)


def size_text(size: int) -> str:
    """Bytes for people: 512 B, 3.4 KB, 12.0 MB, 1.2 GB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def raw_bucket(stage: str | None, home: LocalHome, command: str) -> str:
    name = resolve_stage(stage, home, command=command)
    with reported():
        return PipelineResources.placeholders(load_stage(name)).raw_bucket


def object_line(item: S3Object) -> str:
    """One object per line (pipe-friendly): modified time, size, URI."""
    modified = dt.datetime.fromtimestamp(item.modified, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{modified}  {size_text(item.size):>9}  {item.uri}"


@raw_app.command("list")
def raw_list(
    prefix: Annotated[str, typer.Argument(help="key prefix in the raw bucket (default: everything)")] = "",
    stage: OptionalStageOption = None,
    home: HomeOption = None,
) -> None:
    """List the objects in the stage's local raw bucket: ingested data, --data uploads, errors, capture."""
    local = local_home(home)
    bucket = raw_bucket(stage, local, "raw list")
    found = LocalS3(local).objects(f"s3://{bucket}/{prefix}")
    if not found:
        out.print(f"s3://{bucket}/{prefix} holds no objects", soft_wrap=True)
        return
    for item in found:
        out.print(object_line(item), soft_wrap=True, markup=False)
    out.print(f"{len(found)} object(s), {size_text(sum(o.size for o in found))}", soft_wrap=True)


@raw_app.command("remove")
def raw_remove(
    prefix: Annotated[str, typer.Argument(help="key prefix to remove, e.g. uploads/ or penguins/")],
    stage: OptionalStageOption = None,
    home: HomeOption = None,
) -> None:
    """Remove every object under a key prefix of the stage's local raw bucket."""
    local = local_home(home)
    bucket = raw_bucket(stage, local, "raw remove")
    key = prefix.removeprefix(f"s3://{bucket}/")
    if not key.strip("/"):
        fail("name a key prefix to remove (e.g. uploads/); `rookery local raw list` shows what is there")
    gone = LocalS3(local).delete_prefix(f"s3://{bucket}/{key}")
    if not gone:
        fail(f"s3://{bucket}/{key} holds no objects; `rookery local raw list` shows what is there")
    for item in gone:
        out.print(f"removed {item.uri} ({size_text(item.size)})", soft_wrap=True)
    out.print(f"{len(gone)} object(s), {size_text(sum(o.size for o in gone))} removed", soft_wrap=True)


def stored_line(stored: Stored) -> str:
    """One line on what an execution keeps, for the run's summary and the clean command."""
    return (
        f"{size_text(stored.total)} (job sandboxes {size_text(stored.jobs)}, step outputs "
        f"{size_text(stored.outputs)}, model archives {size_text(stored.models + stored.registered)}, "
        f"of which registered {size_text(stored.registered)})"
    )


def clean(
    keep: Annotated[
        int, typer.Option("--keep", min=0, help="newest executions whose intermediate data stays")
    ] = 1,
    home: HomeOption = None,
) -> None:
    """Remove old executions' intermediate data (job sandboxes, step outputs, unregistered models).

    Every execution's record and logs stay, and so does the model registry with the archives its
    packages point at.
    """
    local = local_home(home)
    removed = remove_intermediate(local, keep=keep)
    if not removed:
        out.print(f"nothing to remove: at most {keep} execution(s) hold intermediate data", soft_wrap=True)
        return
    for item in removed:
        out.print(
            f"execution {item.execution_id}: removed {size_text(item.removable)} "
            f"(job sandboxes {size_text(item.jobs)}, step outputs {size_text(item.outputs)}, "
            f"unregistered models {size_text(item.models)})",
            soft_wrap=True,
        )
    out.print(
        f"freed {size_text(sum(i.removable for i in removed))} from {len(removed)} execution(s); "
        "records, logs and the model registry are kept",
        soft_wrap=True,
    )
