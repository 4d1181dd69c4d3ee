"""Model and RegisterModel steps: a model record under ``<home>/models``, a registry version.

Model names are generated like a pipeline's (``pipelines-<execution>-<step>-<random>``); the
record holds the resolved PrimaryContainer, which a Transform step and endpoints serve from.
Properties follow ``DescribeModelOutput`` and ``DescribeModelPackageOutput``.
"""

from __future__ import annotations

import json
from typing import Any

from emulators.core.errors import LocalEngineError, RegistryError, StepFailedError
from emulators.core.files import write_whole
from emulators.core.home import LocalHome
from emulators.sagemaker.context import StepContext, StepResult
from emulators.sagemaker.expressions import to_text
from emulators.sagemaker.records import now
from emulators.sagemaker.registry import LocalRegistry


def _require_object(ctx: StepContext, uri: str, field: str) -> None:
    try:
        exists = ctx.s3.path(uri).is_file()
    except LocalEngineError as exc:
        raise StepFailedError(f"ValidationException: {field}: {exc}") from None
    if not exists:
        raise StepFailedError(f"ValidationException: {field} {uri} does not exist in the local S3 folder")


def run_model(ctx: StepContext) -> StepResult:
    args = ctx.args
    container = args["PrimaryContainer"]
    _require_object(ctx, container["ModelDataUrl"], "PrimaryContainer.ModelDataUrl")
    name = ctx.job_name
    properties: dict[str, Any] = {
        **args,
        "ModelName": name,
        "ModelArn": ctx.arn("model", name),
        "CreationTime": now().isoformat(),
    }
    save_model(ctx.home, name, {**properties, "ExecutionId": ctx.execution_id})
    return StepResult(properties)


def save_model(home: LocalHome, name: str, record: dict[str, Any]) -> None:
    write_whole(home.models_dir / f"{name}.json", json.dumps(record, indent=2, default=str).encode())


def load_model(home: LocalHome, name: str) -> dict[str, Any]:
    path = home.models_dir / f"{name}.json"
    if not path.is_file():
        raise StepFailedError(f"ValidationException: Could not find model {name!r} (no {path})")
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def run_register(ctx: StepContext) -> StepResult:
    args = ctx.args
    spec = args["InferenceSpecification"]
    container = spec["Containers"][0]
    _require_object(ctx, container["ModelDataUrl"], "InferenceSpecification.Containers[0].ModelDataUrl")
    statistics = ((args.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
    metrics: dict[str, Any] = {}
    if statistics.get("S3Uri"):
        _require_object(ctx, statistics["S3Uri"], "ModelMetrics.ModelQuality.Statistics.S3Uri")
        try:
            metrics = json.loads(ctx.s3.path(statistics["S3Uri"]).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise StepFailedError(
                f"ValidationException: ModelMetrics.ModelQuality.Statistics {statistics['S3Uri']}: "
                f"not JSON ({exc})"
            ) from None
    inference_spec = {
        "image": container["Image"],
        "model_data_url": container["ModelDataUrl"],
        "environment": {str(k): to_text(v) for k, v in (container.get("Environment") or {}).items()},
        "content_types": list(spec.get("SupportedContentTypes") or []),
        "response_types": list(spec.get("SupportedResponseMIMETypes") or []),
        "realtime_instance_types": list(spec.get("SupportedRealtimeInferenceInstanceTypes") or []),
        "transform_instance_types": list(spec.get("SupportedTransformInstanceTypes") or []),
    }
    try:
        package = LocalRegistry(ctx.home).create(
            str(args["ModelPackageGroupName"]),
            region=ctx.region,
            account=ctx.account,
            approval_status=str(args.get("ModelApprovalStatus") or "PendingManualApproval"),
            inference_spec=inference_spec,
            model_metrics=args.get("ModelMetrics") or {},
            metrics=metrics,
            execution_id=ctx.execution_id,
            description=args.get("ModelPackageDescription"),
        )
    except RegistryError as exc:
        raise StepFailedError(f"ValidationException: {exc}") from None
    properties = {
        **args,
        "ModelPackageGroupName": package.group,
        "ModelPackageVersion": package.version,
        "ModelPackageArn": package.arn,
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": package.approval_status,
        "CreationTime": package.created_at.isoformat(),
    }
    ctx.emit(f"registered {package.ref} ({package.approval_status})")
    return StepResult(properties, {"model_package": package.ref, "approval_status": package.approval_status})
