"""Controls T1-T6 over a rendered definition: every job the pipeline launches stays in the perimeter.

Pure checks over the JSON (no scanner reads a pipeline definition, so rookery does). Each
processing, training, tuning and transform job must run in the VPC (T1) with network
isolation (T2) and inter-container traffic encryption (T3), with KMS keys for its volumes and
outputs (T4); spot training needs a checkpoint URI and a bounded wait (T5); every image comes
from the project's private ECR repository (T6). A transform job runs in its model's network
settings, so those are checked on the CreateModel step it names.

A step may acknowledge a control with a written reason in its Description
(``Acknowledged T6: <reason>``); the finding is then reported but does not fail the check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from pipelines.definition import dig, field_path, is_expression, iter_steps, parameter_defaults, steps_by_name
from pipelines.findings import Finding, acknowledgements
from pipelines.reading.containers import image_fields, training_job_definitions
from pipelines.settings import BUILTIN_XGBOOST_LAYOUT, BUILTIN_XGBOOST_REPOSITORY
from stage.names import PRIVATE_ECR_IMAGE

# T5: the longest a spot job may wait for capacity plus run (5 days, ml.training.max_wait_seconds' bound).
MAX_WAIT_SECONDS: Final = 432_000


@dataclass(frozen=True)
class Expected:
    """What the perimeter must equal, when known (the resources the definition was rendered for).

    Without it the checks still require the settings to be present and non-empty; the project
    image is then the image of the first processing step (the project image by contract).
    """

    subnet_ids: frozenset[str] | None = None
    security_group_ids: frozenset[str] | None = None
    volume_kms_key: str | None = None
    output_kms_key: str | None = None
    project_image: str | None = None


@dataclass(frozen=True)
class _Job:
    """Where one job kind keeps each setting inside its step arguments (paths as tuples)."""

    subnets: tuple[str, ...] | None
    security_groups: tuple[str, ...] | None
    isolation: tuple[str, ...] | None
    encryption: tuple[str, ...] | None
    volume_key: tuple[str, ...] | None
    output_key: tuple[str, ...] | None
    subject: str = "the job"  # who the messages name


_PROCESSING = _Job(
    subnets=("NetworkConfig", "VpcConfig", "Subnets"),
    security_groups=("NetworkConfig", "VpcConfig", "SecurityGroupIds"),
    isolation=("NetworkConfig", "EnableNetworkIsolation"),
    encryption=("NetworkConfig", "EnableInterContainerTrafficEncryption"),
    volume_key=("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"),
    output_key=("ProcessingOutputConfig", "KmsKeyId"),
)
_TRAINING = _Job(
    subnets=("VpcConfig", "Subnets"),
    security_groups=("VpcConfig", "SecurityGroupIds"),
    isolation=("EnableNetworkIsolation",),
    encryption=("EnableInterContainerTrafficEncryption",),
    volume_key=("ResourceConfig", "VolumeKmsKeyId"),
    output_key=("OutputDataConfig", "KmsKeyId"),
)
# Network settings of a transform job live on its model (checked on the Model step).
_TRANSFORM = _Job(
    subnets=None,
    security_groups=None,
    isolation=None,
    encryption=None,
    volume_key=("TransformResources", "VolumeKmsKeyId"),
    output_key=("TransformOutput", "KmsKeyId"),
)
# A model has no storage of its own (CreateModel takes no KMS key); its VPC and isolation are
# those of every transform job on it, so they are held to the same expectations as a job's.
_MODEL = _Job(
    subnets=("VpcConfig", "Subnets"),
    security_groups=("VpcConfig", "SecurityGroupIds"),
    isolation=("EnableNetworkIsolation",),
    encryption=None,
    volume_key=None,
    output_key=None,
    subject="the model (and every transform job on it)",
)


def _path(*parts: str) -> str:
    return ".".join(parts)


def _job_findings(
    step: str, args: Mapping[str, Any], job: _Job, expected: Expected, at: str = ""
) -> Iterator[Finding]:
    def where(path: tuple[str, ...]) -> str:
        return _path(at, *path) if at else _path(*path)

    for path, control, wanted, what in (
        (job.subnets, "T1", expected.subnet_ids, "subnets"),
        (job.security_groups, "T1", expected.security_group_ids, "security groups"),
    ):
        if path is None:
            continue
        value = dig(args, *path)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            yield Finding(
                step,
                where(path),
                control,
                f"{job.subject} has no VPC {what}",
                f"set {where(path)} to the stage's {what}",
            )
        elif wanted is not None and frozenset(value) != wanted:
            yield Finding(
                step,
                where(path),
                control,
                f"{job.subject} runs in VPC {what} {sorted(value)}, not the stage's {sorted(wanted)}",
                f"use the stage's {what}",
            )
    for path, control, what in (
        (job.isolation, "T2", "network isolation"),
        (job.encryption, "T3", "traffic encryption"),
    ):
        if path is not None and dig(args, *path) is not True:
            yield Finding(
                step,
                where(path),
                control,
                f"{what} of {job.subject} is {dig(args, *path)!r}, not true",
                f"set {where(path)} to true (SageMaker moves its S3 data; the container needs no network)",
            )
    keys: tuple[tuple[tuple[str, ...] | None, str | None, str], ...] = (
        (job.volume_key, expected.volume_kms_key, "storage volumes"),
        (job.output_key, expected.output_kms_key, "outputs"),
    )
    for path, key, what in keys:
        if path is None:
            continue
        value = dig(args, *path)
        if not isinstance(value, str) or not value:
            yield Finding(
                step,
                where(path),
                "T4",
                f"no KMS key for {what}: AWS-managed encryption only",
                f"set {where(path)} to the stage's customer-managed key for {what}",
            )
        elif key is not None and value != key:
            yield Finding(
                step, where(path), "T4", f"KMS key {value} is not the stage's key for {what}", f"use {key}"
            )


def _spot_findings(
    step: str, args: Mapping[str, Any], defaults: Mapping[str, Any], at: str = ""
) -> Iterator[Finding]:
    def where(*path: str) -> str:
        return _path(at, *path) if at else _path(*path)

    stopping = dig(args, "StoppingCondition") or {}
    wait = stopping.get("MaxWaitTimeInSeconds")
    if dig(args, "EnableManagedSpotTraining") is not True:
        if wait is not None:
            yield Finding(
                step,
                where("StoppingCondition", "MaxWaitTimeInSeconds"),
                "T5",
                "MaxWaitTimeInSeconds is set without managed spot training; SageMaker rejects the job",
                "remove it, or enable managed spot training",
            )
        return
    checkpoint = dig(args, "CheckpointConfig", "S3Uri")
    if not (is_expression(checkpoint) or (isinstance(checkpoint, str) and checkpoint.startswith("s3://"))):
        yield Finding(
            step,
            where("CheckpointConfig", "S3Uri"),
            "T5",
            "spot training without a checkpoint S3 URI: an interrupted job starts over",
            "set CheckpointConfig.S3Uri under the artifacts bucket",
        )
    if not isinstance(wait, int) or isinstance(wait, bool) or not 1 <= wait <= MAX_WAIT_SECONDS:
        yield Finding(
            step,
            where("StoppingCondition", "MaxWaitTimeInSeconds"),
            "T5",
            f"spot training wait is {wait!r}, not bounded by {MAX_WAIT_SECONDS} s",
            f"set StoppingCondition.MaxWaitTimeInSeconds to at most {MAX_WAIT_SECONDS}",
        )
        return
    runtime = stopping.get("MaxRuntimeInSeconds")
    reference = runtime.get("Get") if isinstance(runtime, Mapping) else None
    if isinstance(reference, str) and reference.startswith("Parameters."):
        runtime = defaults.get(reference.removeprefix("Parameters."))
    if isinstance(runtime, int) and runtime > wait:
        yield Finding(
            step,
            where("StoppingCondition", "MaxWaitTimeInSeconds"),
            "T5",
            f"MaxWaitTimeInSeconds {wait} is below MaxRuntimeInSeconds {runtime}; SageMaker rejects the job",
            "raise ml.training.max_wait_seconds to at least the runtime",
        )


def _image_findings(step: str, field: str, image: Any, project: str | None) -> Iterator[Finding]:
    if is_expression(image):
        yield Finding(
            step, field, "T6", "the image is chosen at run time; it cannot be verified", "use a literal URI"
        )
        return
    match = PRIVATE_ECR_IMAGE.match(image) if isinstance(image, str) else None
    if match is None:
        yield Finding(
            step,
            field,
            "T6",
            f"image {image!r} is not in a private ECR repository",
            "build the project image as a CDK asset and use its ECR URI",
        )
        return
    if project is not None and image != project:
        builtin = match["repository"] == BUILTIN_XGBOOST_REPOSITORY
        yield Finding(
            step,
            field,
            "T6",
            f"image {image} is not the project image {project}"
            + (f"; {BUILTIN_XGBOOST_LAYOUT}" if builtin else ""),
            "use the project image, or acknowledge the exception (ml.training.image_exception_reason)",
        )


def _project_image(definition: Mapping[str, Any], expected: Expected) -> str | None:
    if expected.project_image is not None:
        return expected.project_image
    for step in iter_steps(definition.get("Steps", [])):
        if step.get("Type") == "Processing":
            (field,) = image_fields(step)
            image = dig(step.get("Arguments") or {}, *field.image)
            return image if isinstance(image, str) else None
    return None


def _model_of(
    transform: Mapping[str, Any], steps: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    reference = dig(transform, "Arguments", "ModelName", "Get")
    if isinstance(reference, str) and reference.startswith("Steps.") and reference.endswith(".ModelName"):
        model = steps.get(reference.removeprefix("Steps.").removesuffix(".ModelName"))
        if model is not None and model.get("Type") == "Model":
            return model
    return None


def _step_findings(
    step: Mapping[str, Any], definition: Mapping[str, Any], expected: Expected, project: str | None
) -> Iterator[Finding]:
    name, kind, args = str(step.get("Name")), step.get("Type"), step.get("Arguments") or {}
    defaults = parameter_defaults(definition)
    if kind == "Processing":
        yield from _job_findings(name, args, _PROCESSING, expected)
    elif kind == "Training":
        yield from _job_findings(name, args, _TRAINING, expected)
        yield from _spot_findings(name, args, defaults)
    elif kind == "Tuning":
        for path, job in training_job_definitions(args):
            at = field_path(*path)
            yield from _job_findings(name, job, _TRAINING, expected, at)
            yield from _spot_findings(name, job, defaults, at)
    elif kind == "Transform":
        yield from _job_findings(name, args, _TRANSFORM, expected)
        if _model_of(step, steps_by_name(definition)) is None:
            yield Finding(
                name,
                "ModelName",
                "T1",
                "the transform's model is not made in this pipeline: its VPC and isolation are unverifiable",
                "create the model in a Model step and refer to its ModelName",
            )
    elif kind == "Model":
        yield from _job_findings(name, args, _MODEL, expected)
    for image in image_fields(step):
        yield from _image_findings(name, field_path(*image.image), dig(args, *image.image), project)


def check_perimeter(definition: Mapping[str, Any], expected: Expected | None = None) -> list[Finding]:
    """Findings for controls T1-T6; acknowledged ones carry their reason and do not block."""
    expected = expected or Expected()
    project = _project_image(definition, expected)
    findings = []
    for step in iter_steps(definition.get("Steps", [])):
        reasons = acknowledgements(step)
        for finding in _step_findings(step, definition, expected, project):
            reason = reasons.get(finding.control)
            findings.append(replace(finding, acknowledged=reason) if reason else finding)
    return findings
