"""A Model step: a model record under ``<home>/models`` (see ``models.py``).

The model is named like a pipeline's jobs (``pipelines-<execution>-<step>-<random>``); the record
holds the resolved PrimaryContainer, which a Transform step and endpoints serve from. Properties
follow ``DescribeModelOutput``.
"""

from __future__ import annotations

from typing import Any

from emulators.sagemaker.models import now, save_model
from emulators.sagemaker.pipeline.context import StepContext, StepResult


def run_model(ctx: StepContext) -> StepResult:
    args = ctx.args
    container = args["PrimaryContainer"]
    ctx.require_object(container["ModelDataUrl"], "PrimaryContainer.ModelDataUrl")
    name = ctx.job_name
    properties: dict[str, Any] = {
        **args,
        "ModelName": name,
        "ModelArn": ctx.arn("model", name),
        "CreationTime": now().isoformat(),
    }
    save_model(ctx.home, name, {**properties, "ExecutionId": ctx.execution_id})
    return StepResult(properties)
