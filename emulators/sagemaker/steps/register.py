"""A RegisterModel step: the next version of a model package group in the local registry (see ``models.py``).

The version holds its approval status, the resolved inference specification and the metrics
loaded from ``ModelMetrics.ModelQuality.Statistics`` (``evaluation.json``). Properties follow
``DescribeModelPackageOutput``.
"""

from __future__ import annotations

import json
from typing import Any

from emulators.sagemaker.exceptions import RegistryError, StepFailedError
from emulators.sagemaker.models import LocalRegistry
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.pipeline.expressions import to_text


def run_register(ctx: StepContext) -> StepResult:
    args = ctx.args
    spec = args["InferenceSpecification"]
    container = spec["Containers"][0]
    ctx.require_object(container["ModelDataUrl"], "InferenceSpecification.Containers[0].ModelDataUrl")
    statistics = ((args.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
    metrics: dict[str, Any] = {}
    if statistics.get("S3Uri"):
        ctx.require_object(statistics["S3Uri"], "ModelMetrics.ModelQuality.Statistics.S3Uri")
        try:
            metrics = json.loads(ctx.s3.path(statistics["S3Uri"]).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise StepFailedError(
                f"ValidationException: ModelMetrics.ModelQuality.Statistics {statistics['S3Uri']}: "
                f"not JSON ({exc})"
            ) from None
    baselines = args.get("DriftCheckBaselines") or {}
    for section, files in baselines.items():
        for kind, entry in (files or {}).items():
            ctx.require_object(entry["S3Uri"], f"DriftCheckBaselines.{section}.{kind}.S3Uri")
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
            drift_check_baselines=baselines,
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
