"""Helpers shared by the pipeline tests (a uniquely named module: conftest.py is not importable)."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from typing import Any, Final

from pipelines import PipelineSettings
from stage import STAGES_DIR, Stage, parse_stage

# Modules that use a rendered definition share one xdist worker, so each variant renders once.
RENDER_GROUP: Final = "pipelines-render"
# The dev stage's region: the AWS tests run there, in moto.
REGION: Final = "eu-west-1"
BUILTIN_REASON: Final = "tuning baseline against AWS's own XGBoost container, reviewed by the platform team"


def stage_with(base: str = "dev", **training: Any) -> Stage:
    """Stage ``base`` with ``ml.training`` fields replaced, validated like a stage file."""
    raw = tomllib.loads((STAGES_DIR / f"{base}.toml").read_text(encoding="utf-8"))
    raw.setdefault("ml", {}).setdefault("training", {}).update(training)
    return parse_stage(base, raw, source="test")


def render(settings: PipelineSettings) -> dict[str, Any]:
    """``pipelines.render_definition`` (imports the SageMaker SDK on first use)."""
    from pipelines import render_definition  # noqa: PLC0415 - SDK import: render worker only

    return render_definition(settings)


def raw_sdk_definition(settings: PipelineSettings) -> dict[str, Any]:
    """What SDK v3 renders for ``settings`` before rookery's fixes."""
    from pipelines import build_pipeline  # noqa: PLC0415 - see render()
    from pipelines._sdk import sdk_environment  # noqa: PLC0415

    with sdk_environment():
        raw: dict[str, Any] = json.loads(build_pipeline(settings).definition())
    return raw


def steps_page(*states: tuple[str, str, str]) -> dict[str, Any]:
    """A ListPipelineExecutionSteps page for steps (name, status, reason) started in this order; the
    API lists the newest first."""
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    steps = [
        {
            "StepName": name,
            "StepStatus": status,
            "FailureReason": reason,
            "StartTime": start + dt.timedelta(minutes=i),
        }
        for i, (name, status, reason) in enumerate(states)
    ]
    return {"PipelineExecutionSteps": steps[::-1]}
