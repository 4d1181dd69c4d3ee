"""Which stage a ``rookery local`` command means when ``--stage`` is left out.

The stage of the latest local run (found by its pipeline name); with no run yet, the only stage if
there is one; otherwise the command refuses and lists the stages. A stage file that does not load
is skipped here (the command that names it reports it).
"""

from __future__ import annotations

from emulators.core.home import LocalHome
from emulators.sagemaker.models import executions
from rookery.cli.errors import err, fail
from stage import ConfigError, Stage, available_stages, load_stage
from stage.names import model_package_group_name, pipeline_name


def _loadable() -> list[Stage]:
    found = []
    for name in available_stages():
        try:
            found.append(load_stage(name))
        except ConfigError:
            continue
    return found


def latest_run_stage(home: LocalHome) -> str | None:
    """The stage of the newest local execution, or None when there is none (or it matches no stage)."""
    runs = executions(home)
    if not runs:
        return None
    by_pipeline = {pipeline_name(stage): stage.name for stage in _loadable()}
    return by_pipeline.get(runs[0].pipeline_name)


def stage_of_group(group: str) -> str | None:
    """The stage whose model package group is ``group``."""
    return next((s.name for s in _loadable() if model_package_group_name(s) == group), None)


def resolve_stage(given: str | None, home: LocalHome, *, command: str) -> str:
    """``given``, else the latest run's stage (said on stderr), else the only stage; else refuse."""
    if given:
        return given
    latest = latest_run_stage(home)
    if latest:
        err.print(f"stage {latest} (the latest local run's; choose another with --stage)", soft_wrap=True)
        return latest
    stages = available_stages()
    if len(stages) == 1:
        return stages[0]
    fail(
        f"which stage? there is no local run to take it from; "
        f"pass `rookery local {command} --stage NAME` (stages: {', '.join(stages) or 'none'})"
    )
