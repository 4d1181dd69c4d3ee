"""The options several ``rookery`` commands share, defined once so each means the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emulators.core.home import LocalHome, default_home_root

StageOption = Annotated[str, typer.Option("--stage", "-s", help="stage name (infra/stages/<stage>.toml)")]
OptionalStageOption = Annotated[
    str | None, typer.Option("--stage", "-s", help="stage name (infra/stages/<stage>.toml)")
]
TuneOption = Annotated[bool | None, typer.Option("--tune/--no-tune", help="default: ml.tuning.enabled")]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="override a pipeline parameter, e.g. AucThreshold=0.9 (repeatable)",
    ),
]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="local engine folder: local S3, executions, registry, endpoints, the demo report "
        "(default: $ROOKERY_HOME or <repo>/.rookery)",
    ),
]
ProfileOption = Annotated[str | None, typer.Option("--profile", help="AWS profile", envvar="AWS_PROFILE")]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="AWS region (default: the stage's region)")
]
EndpointUrlOption = Annotated[
    str | None, typer.Option("--endpoint-url", help="SageMaker endpoint URL override")
]


def local_home(path: Path | None) -> LocalHome:
    """The ``--home`` folder, absolute."""
    return LocalHome((path or default_home_root()).resolve())
