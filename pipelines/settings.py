"""Typed inputs of the pipeline builder: the stage's ML settings plus the deployed resources.

``PipelineResources`` are the names and ARNs that exist only once the stacks are deployed;
``PipelineResources.placeholders(stage)`` gives deterministic offline stand-ins (for
``rookery pipeline render`` without AWS, for tests and for the local engine). The ML stack
renders with its own unique placeholder values and substitutes CloudFormation tokens into
the JSON string, which is why every resource value must reach the definition verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rookery_contracts.model_layout import MODEL_LAYOUT
from stage import DatasetField, MlSettings, OperatingPoint, Stage
from stage.monitoring import MonitoringSettings
from stage.names import (
    PRIVATE_ECR_IMAGE,
    model_package_group_name,
    pipeline_name,
    placeholder_bucket_name,
    placeholder_image_repository,
    placeholder_role_name,
)

# SageMaker's built-in XGBoost algorithm image, selectable with ml.training.image = "builtin-xgboost".
BUILTIN_XGBOOST_VERSION: Final = "1.7-1"
BUILTIN_XGBOOST_REPOSITORY: Final = "sagemaker-xgboost"
# The option changes the training image only. Evaluate and the model the pipeline registers and
# serves keep running the project image, which loads the project's model layout; the validate
# finding on the built-in image says so (control T6).
BUILTIN_XGBOOST_LAYOUT: Final = (
    "the built-in image only trains: Evaluate, Register and CreateModel (serving, batch transform) run "
    f"the project image, which expects the project's model layout ({', '.join(MODEL_LAYOUT)}) "
    "in model.tar.gz, and the built-in algorithm writes its own (xgboost-model), so an execution "
    'stops at Evaluate; set ml.training.image = "project" for a model the pipeline evaluates and serves'
)
# An account id for placeholders when the stage does not pin one (environment-agnostic stages).
PLACEHOLDER_ACCOUNT: Final = "000000000000"

# Search space of the tuning step (SageMaker built-in XGBoost hyperparameter names).
# name -> (kind, low, high, scaling)
TUNING_RANGES: Final[dict[str, tuple[str, float, float, str]]] = {
    "max_depth": ("Integer", 3, 9, "Linear"),
    "eta": ("Continuous", 0.01, 0.5, "Logarithmic"),
    "min_child_weight": ("Continuous", 1, 10, "Linear"),
    "subsample": ("Continuous", 0.5, 1.0, "Linear"),
}

_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
_KMS_ARN = re.compile(r"^arn:aws[a-z\-]*:kms:[a-z0-9\-]+:\d{12}:key/[a-zA-Z0-9\-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_SUBNET = re.compile(r"^subnet-[0-9a-z]+$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-z]+$")
# CreatePipeline's PipelineName and CreateModelPackageGroup's name patterns (botocore model).
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
MODEL_PACKAGE_GROUP_NAME: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class SettingsError(ValueError):
    """Pipeline settings or resources are invalid; the message names the field, the value and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PipelineResources(_Frozen):
    """The deployed things a pipeline definition names; every value lands verbatim in the JSON."""

    role_arn: str = Field(description="SageMaker execution role of every job (and the pipeline)")
    artifacts_bucket: str = Field(description="bucket for job outputs, models, checkpoints, evaluations")
    raw_bucket: str = Field(description="bucket the ingested data lands in (the default input)")
    image_uri: str = Field(description="the project image in the project's private ECR repository")
    subnet_ids: tuple[str, ...] = Field(min_length=1)
    security_group_ids: tuple[str, ...] = Field(min_length=1)
    volume_kms_key_arn: str = Field(description="KMS key for job storage volumes")
    output_kms_key_arn: str = Field(description="KMS key for job outputs and model artifacts")
    model_package_group_name: str
    pipeline_name: str

    @field_validator("role_arn")
    @classmethod
    def _role(cls, v: str) -> str:
        # The SDK resolves anything that is not a role ARN through IAM (an AWS call).
        if not _ROLE_ARN.match(v):
            raise ValueError(
                "must be an IAM role ARN, e.g. arn:aws:iam::123456789012:role/rookery-dev-sagemaker"
            )
        return v

    @field_validator("volume_kms_key_arn", "output_kms_key_arn")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KMS_ARN.match(v):
            raise ValueError("must be a KMS key ARN, e.g. arn:aws:kms:eu-west-1:123456789012:key/<key-id>")
        return v

    @field_validator("artifacts_bucket", "raw_bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        if not _BUCKET.match(v):
            raise ValueError(
                "must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-'), no s3://"
            )
        return v

    @field_validator("image_uri")
    @classmethod
    def _image(cls, v: str) -> str:
        if not PRIVATE_ECR_IMAGE.match(v):
            raise ValueError(
                "must be an image in a private ECR repository with a tag or digest, e.g. "
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rookery-dev-image:latest (control T6)"
            )
        return v

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if not _SUBNET.match(s)]
        if bad:
            raise ValueError(f"{bad} are not subnet ids (subnet-...)")
        return v

    @field_validator("security_group_ids")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if not _SECURITY_GROUP.match(s)]
        if bad:
            raise ValueError(f"{bad} are not security group ids (sg-...)")
        return v

    @field_validator("pipeline_name")
    @classmethod
    def _pipeline(cls, v: str) -> str:
        if not _PIPELINE_NAME.match(v):
            raise ValueError(
                "must be letters, digits and single hyphens (at most 256), e.g. rookery-dev-pipeline"
            )
        return v

    @field_validator("model_package_group_name")
    @classmethod
    def _group(cls, v: str) -> str:
        if not MODEL_PACKAGE_GROUP_NAME.match(v):
            raise ValueError(
                "must be letters, digits and single hyphens (at most 63), e.g. rookery-dev-models"
            )
        return v

    @classmethod
    def placeholders(cls, stage: Stage) -> PipelineResources:
        """Deterministic offline values for ``stage`` (no AWS): ``<qualifier>-artifacts`` and so on."""
        account = stage.account or PLACEHOLDER_ACCOUNT
        region = stage.region
        return cls(
            role_arn=f"arn:aws:iam::{account}:role/{placeholder_role_name(stage)}",
            artifacts_bucket=placeholder_bucket_name(stage, "artifacts"),
            raw_bucket=placeholder_bucket_name(stage, "raw"),
            image_uri=f"{account}.dkr.ecr.{region}.amazonaws.com/{placeholder_image_repository(stage)}:latest",
            subnet_ids=tuple(f"subnet-{i:017d}" for i in range(1, stage.max_azs + 1)),
            security_group_ids=("sg-00000000000000001",),
            volume_kms_key_arn=f"arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000001",
            output_kms_key_arn=f"arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000002",
            model_package_group_name=model_package_group_name(stage),
            pipeline_name=pipeline_name(stage),
        )

    def values(self) -> dict[str, str]:
        """Every resource value by field name (list fields as ``subnet_ids[0]`` ...)."""
        return resource_values(self.model_dump())


def resource_values(fields: Mapping[str, str | Sequence[str]]) -> dict[str, str]:
    """Resource values by field name, a list field as one entry per item (``subnet_ids[0]`` ...).

    The keys ``split_on_placeholders`` marks, for ``PipelineResources`` and for any object of the same
    fields (the stack's tokens).
    """
    out: dict[str, str] = {}
    for name, value in fields.items():
        if isinstance(value, str):
            out[name] = value
        else:
            out.update({f"{name}[{i}]": item for i, item in enumerate(value)})
    return out


class PipelineSettings(_Frozen):
    """Everything ``build_pipeline`` needs; derived from a ``Stage`` (``from_stage``)."""

    stage_name: str
    region: str
    dataset: DatasetField
    data_prefix: str = Field(description="raw-bucket prefix of the dataset, e.g. 'penguins/'")
    ml: MlSettings
    monitoring: MonitoringSettings = MonitoringSettings()
    resources: PipelineResources
    tune: bool
    spot: bool

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        training = self.ml.training
        if self.spot and training.max_wait_seconds < training.max_runtime_seconds:
            raise ValueError(
                f"spot training needs ml.training.max_wait_seconds ({training.max_wait_seconds}) >= "
                f"max_runtime_seconds ({training.max_runtime_seconds}); raise it in the stage, "
                "or render with --no-spot"
            )
        if not self.data_prefix.endswith("/") or self.data_prefix.startswith("/"):
            raise ValueError(f"data_prefix {self.data_prefix!r} must be a key prefix like 'penguins/'")
        return self

    @classmethod
    def from_stage(
        cls,
        stage: Stage,
        resources: PipelineResources,
        tune: bool | None = None,
        spot: bool | None = None,
    ) -> PipelineSettings:
        """The stage's pipeline; ``tune``/``spot`` override ``ml.tuning.enabled``/``ml.training.use_spot``."""
        try:
            return cls(
                stage_name=stage.name,
                region=stage.region,
                dataset=stage.dataset,
                data_prefix=stage.data.layout.data_prefix(stage.dataset),
                ml=stage.ml,
                monitoring=stage.monitoring,
                resources=resources,
                tune=stage.ml.tuning.enabled if tune is None else tune,
                spot=stage.ml.training.use_spot if spot is None else spot,
            )
        except ValidationError as exc:
            raise SettingsError(f"stage {stage.name!r}: {describe(exc)}") from None

    @property
    def default_input_uri(self) -> str:
        return f"s3://{self.resources.raw_bucket}/{self.data_prefix}"

    @property
    def builtin_image(self) -> bool:
        return self.ml.training.image == "builtin-xgboost"


def describe(exc: ValidationError) -> str:
    """One line per bad field: where, what, and the fix pydantic's message carries."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"]) or "(settings)"
        parts.append(f"{loc}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def operating_point_arg(point: OperatingPoint) -> str:
    """The evaluate entrypoint's ``--operating-point`` form: ``min_sensitivity:0.85`` or ``best_f1``."""
    return point.kind if point.value is None else f"{point.kind}:{point.value:g}"
