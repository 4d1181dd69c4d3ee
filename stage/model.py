"""The stage model: one validated, typed description of a deployment stage.

Pure pydantic (no CDK, no AWS). ``app.py`` loads a stage once and passes it down; the CLI
and the pipeline builder read the same model. Every invalid value fails with the field,
the value and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    field_validator,
    model_validator,
)

from rookery_contracts import hyperparameters
from rookery_contracts.evaluation import DEFAULT_GATE_CONFIDENCE
from rookery_contracts.hyperparameters import TRAINING_DEFAULTS
from rookery_contracts.schema import DEFAULT_MAX_INVALID_FRACTION, DatasetSchema, schema_from_mapping
from stage.monitoring import MonitoringSettings
from stage.serving import ServingSettings

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# AWS Control Tower's CT.CLOUDWATCH.PR.2: a production stage keeps its logs at least a year.
PRODUCTION_MIN_LOG_RETENTION_DAYS = 365

# Where a model version starts in the registry. A stage requires approval (control R1) when its
# registrations are PendingManualApproval: then nothing at run time can register another status.
ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
PENDING_MANUAL_APPROVAL: Final[ApprovalStatus] = "PendingManualApproval"
APPROVAL_STATUSES: Final[tuple[ApprovalStatus, ...]] = (PENDING_MANUAL_APPROVAL, "Approved", "Rejected")

# Interface endpoints rookery knows how to create, and why a workload needs each one.
# Names are the service part of ``com.amazonaws.<region>.<name>`` (``notebook`` is
# ``aws.sagemaker.<region>.notebook``).
INTERFACE_ENDPOINTS: Mapping[str, str] = {
    "sagemaker.api": "SageMaker control plane: pipelines, jobs, model registry (trigger Lambda, notebook)",
    "sagemaker.runtime": "InvokeEndpoint from inside the VPC",
    "notebook": "Jupyter on the notebook instance without internet access",
    "sts": "credentials for jobs and Lambdas (AssumeRole, GetCallerIdentity)",
    "logs": "CloudWatch Logs from jobs and notebooks",
    "monitoring": "CloudWatch metrics from jobs and endpoints",
    "kms": "encrypt and decrypt with the customer-managed keys",
    "ecr.api": "ECR authentication and image manifests",
    "ecr.dkr": "ECR image pulls for the project image",
    "glue": "Glue Data Catalog from notebooks and jobs",
    "kinesis-firehose": "PutRecord from producers inside the VPC",
    "athena": "Athena queries from notebooks",
    "sqs": "Lambda dead-letter queues",
    "events": "EventBridge PutEvents from workloads",
    "ssm": "parameters for notebooks and jobs",
    "execute-api": "the private inference API: API Gateway accepts it only through this endpoint",
    "cloudformation": "the deployer's Serving stack updates (DescribeStacks, UpdateStack) from its Lambdas",
}
# Without these, jobs in a no-NAT VPC cannot start (image pull, credentials, logs, keys).
ESSENTIAL_ENDPOINTS = ("sagemaker.api", "sts", "logs", "kms", "ecr.api", "ecr.dkr")
DEFAULT_ENDPOINTS = (
    "sagemaker.api", "sagemaker.runtime", "notebook", "sts", "logs", "monitoring",
    "kms", "ecr.api", "ecr.dkr", "glue", "kinesis-firehose", "execute-api", "cloudformation", "events",
)  # fmt: skip
# The deployer's Lambdas run in the VPC: they update the Serving stack and publish each outcome.
DEPLOYER_ENDPOINTS = ("cloudformation", "events")

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


class ConfigError(Exception):
    """A stage cannot be loaded; the message names each bad field, its value and the fix."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The dataset schema as a pydantic field: validated and dumped by rookery_contracts.schema alone (the
# Firehose transform and the preprocess job parse its JSON with the same rules). Its SchemaError is a
# ValueError listing every problem; the loader reports each under dataset.<field>.
DatasetField = Annotated[
    DatasetSchema, PlainValidator(schema_from_mapping), PlainSerializer(DatasetSchema.to_dict)
]


class DataLayout(_Model):
    """Where ingested data lands in the raw bucket.

    Firehose, Glue, the pipeline trigger and the local engine all read these prefixes from here.
    """

    error_prefix: str = "errors/"
    partition_key: str = "ingest_date"
    # Files given to ``rookery local run --data``: each under a prefix of its own, outside the
    # dataset's prefix, so only the run it was given to reads it.
    upload_prefix: str = "uploads/"

    def data_prefix(self, dataset: DatasetSchema) -> str:
        return f"{dataset.name}/"

    def upload(self, dataset: DatasetSchema, upload_id: str) -> str:
        """The prefix of one ``--data`` upload."""
        return f"{self.upload_prefix}{dataset.name}/{upload_id}/"

    def firehose_prefix(self, dataset: DatasetSchema) -> str:
        return f"{dataset.name}/{self.partition_key}=!{{timestamp:yyyy-MM-dd}}/"

    def firehose_error_prefix(self) -> str:
        date = f"{self.partition_key}=!{{timestamp:yyyy-MM-dd}}"
        return f"{self.error_prefix}!{{firehose:error-output-type}}/{date}/"

    def partition(self, dataset: DatasetSchema, date: str) -> str:
        """The prefix Firehose writes on ``date`` (YYYY-MM-DD)."""
        return f"{dataset.name}/{self.partition_key}={date}/"


class DataSettings(_Model):
    """Retention and teardown of stateful data (buckets, keys, registry)."""

    removal_policy: Literal["retain", "destroy"] = "retain"
    raw_expiration_days: int = Field(default=365, ge=1)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    infrequent_access_after_days: int = Field(default=30, ge=30)
    access_log_expiration_days: int = Field(default=365, ge=1)
    firehose_buffer_seconds: int = Field(default=300, ge=0, le=900)
    firehose_buffer_mib: int = Field(default=64, ge=64, le=128)
    layout: DataLayout = DataLayout()


class OperatingPoint(_Model):
    """How the decision threshold is chosen on validation data and checked on test data.

    ``confidence`` is the level of the one-sided bounds on the constrained rate: the threshold's
    margin on validation and the evidence the gate needs on test to fail a model (0.5: no margin,
    the bar is met or missed exactly as measured).
    """

    kind: Literal["min_sensitivity", "min_specificity", "best_f1"] = "best_f1"
    value: float | None = Field(default=None, gt=0, lt=1)
    confidence: float = Field(default=DEFAULT_GATE_CONFIDENCE, ge=0.5, lt=1)

    @model_validator(mode="after")
    def _value(self) -> OperatingPoint:
        if self.kind == "best_f1" and self.value is not None:
            raise ValueError(
                "'best_f1' takes no value; remove 'value' or use 'min_sensitivity'/'min_specificity'"
            )
        if self.kind != "best_f1" and self.value is None:
            raise ValueError(f"{self.kind!r} needs a 'value' between 0 and 1, e.g. value = 0.9")
        return self


InstanceType = Annotated[
    str, Field(pattern=_INSTANCE.pattern, description="a SageMaker instance type, e.g. ml.m5.large")
]
HyperparameterValue = str | int | float | bool


class TrainingSettings(_Model):
    image: Literal["project", "builtin-xgboost"] = "project"
    # Control T6 (images from the project's ECR repository): choosing the built-in image is an
    # exception that the pipeline perimeter check reports unless it carries a written reason.
    image_exception_reason: str | None = Field(default=None, min_length=20)
    instance_type: InstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=20)
    volume_size_gb: int = Field(default=30, ge=1, le=1024)
    use_spot: bool = True
    max_runtime_seconds: int = Field(default=3600, ge=60, le=432000)
    max_wait_seconds: int = Field(default=7200, ge=60, le=432000)
    # The stage's values merged over rookery_contracts.hyperparameters.TRAINING_DEFAULTS, validated
    # (names, types, ranges) by the definitions the image's training job uses.
    hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=lambda: dict(TRAINING_DEFAULTS))

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters(cls, v: dict[str, HyperparameterValue]) -> dict[str, HyperparameterValue]:
        merged = {**TRAINING_DEFAULTS, **v}
        hyperparameters.check(merged)  # HyperparameterError (a ValueError) lists every problem
        return merged

    @model_validator(mode="after")
    def _spot(self) -> TrainingSettings:
        if self.use_spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds ({self.max_wait_seconds}) is below max_runtime_seconds "
                f"({self.max_runtime_seconds}); spot training needs max_wait_seconds >= max_runtime_seconds"
            )
        if self.image == "project" and self.image_exception_reason is not None:
            raise ValueError(
                'image_exception_reason is set but image = "project" is no exception; remove the reason'
            )
        return self


class TuningSettings(_Model):
    enabled: bool = False
    max_jobs: int = Field(default=8, ge=1, le=500)
    max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    strategy: Literal["Bayesian", "Random"] = "Bayesian"

    @model_validator(mode="after")
    def _parallel(self) -> TuningSettings:
        if self.max_parallel_jobs > self.max_jobs:
            raise ValueError(
                f"max_parallel_jobs ({self.max_parallel_jobs}) exceeds max_jobs ({self.max_jobs}); lower it"
            )
        return self


class SplitSettings(_Model):
    train: float = Field(default=0.70, gt=0, lt=1)
    validation: float = Field(default=0.15, gt=0, lt=1)
    test: float = Field(default=0.15, gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sum(self) -> SplitSettings:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test = {total:g}; the three fractions must add up to 1")
        return self


class MlSettings(_Model):
    """Pipeline defaults for a stage; each also becomes a pipeline parameter where it makes sense."""

    processing_instance_type: InstanceType = "ml.m5.large"
    processing_instance_count: int = Field(default=1, ge=1, le=20)
    transform_instance_type: InstanceType = "ml.m5.large"
    transform_instance_count: int = Field(default=1, ge=1, le=20)
    inference_instance_types: tuple[InstanceType, ...] = ("ml.m5.large", "ml.c5.large")
    auc_threshold: float = Field(default=0.80, gt=0, le=1)
    operating_point: OperatingPoint = OperatingPoint()
    approval_status: ApprovalStatus = PENDING_MANUAL_APPROVAL
    """The status a registered version starts with. ``PendingManualApproval`` (the default, and the only
    value a production stage accepts) means a person approves every version (control R1)."""
    standardize: bool = False
    # Preprocess fails when more of a feature column's values than this are invalid (else imputes them).
    max_invalid_fraction: float = Field(default=DEFAULT_MAX_INVALID_FRACTION, ge=0, le=1)
    split: SplitSettings = SplitSettings()
    training: TrainingSettings = TrainingSettings()
    tuning: TuningSettings = TuningSettings()

    @property
    def requires_approval(self) -> bool:
        return self.approval_status == PENDING_MANUAL_APPROVAL

    @property
    def registration_statuses(self) -> tuple[str, ...]:
        """The statuses a run of the pipeline may register (R1): only pending where approval is required."""
        return (PENDING_MANUAL_APPROVAL,) if self.requires_approval else APPROVAL_STATUSES


# Notebook platforms SageMaker still supports; the Amazon Linux 1 and 2 platforms are deprecated.
_NOTEBOOK_PLATFORM = re.compile(r"^notebook-al2023-v\d+$")
# IAM role names (the RoleName API pattern).
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
# A VPC endpoint id, as aws:SourceVpce carries it.
_VPC_ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")


class NotebookSettings(_Model):
    """The stage's notebook instance (controls N1-N6) and who may open it."""

    enabled: bool = True
    instance_type: InstanceType = "ml.t3.medium"
    volume_size_gb: int = Field(default=20, ge=5, le=16384)
    idle_minutes: int = Field(default=60, ge=5, le=1440)
    platform_identifier: str = "notebook-al2023-v1"
    # N6: roles of this account that receive the policy to open Jupyter on this notebook (nothing
    # else may: the policy names this notebook's ARN only). Empty: attach the policy yourself.
    access_role_names: tuple[str, ...] = ()
    # N6: where people may open Jupyter from. The presigned URL is served from SageMaker's public
    # domain, so the open policy admits requests only through these VPC endpoints (the stage's own
    # by config name, or other VPCs' by id, "vpce-...") or from these address ranges (the corporate
    # network's public CIDRs). An enabled notebook needs at least one. Secure default: the stage's own
    # SageMaker API and notebook endpoints, i.e. people on a network connected to the VPC.
    open_from_vpc_endpoints: tuple[str, ...] = ("sagemaker.api", "notebook")
    open_from_cidrs: tuple[str, ...] = ()

    @field_validator("platform_identifier")
    @classmethod
    def _platform(cls, v: str) -> str:
        if not _NOTEBOOK_PLATFORM.match(v):
            raise ValueError(
                "only Amazon Linux 2023 notebook platforms are supported (the AL1 and AL2 ones are "
                'deprecated); use platform_identifier = "notebook-al2023-v1"'
            )
        return v

    @field_validator("access_role_names")
    @classmethod
    def _roles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in v if not _ROLE_NAME.match(r)]
        if bad:
            raise ValueError(
                f"{bad} are not IAM role names (a name, not an ARN: letters, digits and +=,.@_-, "
                'at most 64); e.g. access_role_names = ["DataScientist"]'
            )
        if len(set(v)) != len(v):
            raise ValueError("a role is listed twice; list each once")
        return v

    @field_validator("open_from_vpc_endpoints")
    @classmethod
    def _vpc_endpoints(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in v if e not in INTERFACE_ENDPOINTS and not _VPC_ENDPOINT_ID.match(e)]
        if bad:
            raise ValueError(
                f"{bad} are neither interface endpoint names ({', '.join(sorted(INTERFACE_ENDPOINTS))}) nor "
                'VPC endpoint ids; e.g. open_from_vpc_endpoints = ["sagemaker.api", "notebook"] or '
                '["vpce-0123456789abcdef0"]'
            )
        if len(set(v)) != len(v):
            raise ValueError("an endpoint is listed twice; list each once")
        return v

    @field_validator("open_from_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        networks = []
        for text in v:
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                raise ValueError(
                    f'{text!r} is not an address range ({exc}); e.g. open_from_cidrs = ["203.0.113.0/24"]'
                ) from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"{text!r} is every address: Jupyter would open from anywhere; name the corporate "
                    'network\'s ranges, e.g. ["203.0.113.0/24"]'
                )
            networks.append(str(network))
        if len(set(networks)) != len(networks):
            raise ValueError("a range is listed twice; list each once")
        return tuple(networks)


class Stage(_Model):
    """Everything that differs between deployment stages."""

    name: str
    production: bool = False
    account: str | None = None
    region: str = "eu-west-1"
    prefix: str = "rookery"
    vpc_cidr: str = "10.20.0.0/16"
    max_azs: int = Field(default=2, ge=2, le=6)
    interface_endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    log_retention_days: int = 90
    termination_protection: bool = False
    data: DataSettings = DataSettings()
    dataset: DatasetField
    ml: MlSettings = MlSettings()
    notebook: NotebookSettings = NotebookSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    # Set by the loader from an explicit synth-time flag, never from the stage file:
    # data is destroyed on teardown only when the stage allows it AND the flag is given.
    destroy_data_on_delete: bool = Field(default=False, exclude=True)

    @field_validator("name", "prefix")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "must be 2-20 lower-case letters, digits or '-', starting with a letter; e.g. 'dev'"
            )
        return v

    @field_validator("account")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{12}", v):
            raise ValueError('an AWS account id is 12 digits, as a string: account = "123456789012"')
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION.match(v):
            raise ValueError("not an AWS region name; use one like 'eu-west-1' or 'us-east-1'")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a valid IPv4 network ({exc}); use a block like '10.20.0.0/16'") from None
        if not net.is_private:
            raise ValueError(
                "must be a private (RFC 1918) range such as 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        if not 16 <= net.prefixlen <= 22:
            raise ValueError(
                f"prefix /{net.prefixlen} is outside /16../22 (VPCs allow /16 at most; "
                "rookery needs room for one /24 subnet per AZ); use e.g. 10.20.0.0/16"
            )
        return str(net)

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [e for e in v if e not in INTERFACE_ENDPOINTS]
        if unknown:
            raise ValueError(f"unknown endpoint names {unknown}; choose from {sorted(INTERFACE_ENDPOINTS)}")
        missing = [e for e in ESSENTIAL_ENDPOINTS if e not in v]
        if missing:
            raise ValueError(
                f"missing {missing}: jobs in a VPC without NAT cannot pull images, get credentials, "
                "log or use keys without them; add them back"
            )
        if len(set(v)) != len(v):
            raise ValueError("an endpoint is listed twice; list each once")
        return v

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"CloudWatch Logs accepts only {list(LOG_RETENTION_DAYS)} days; pick one of them"
            )
        return v

    @model_validator(mode="after")
    def _stage_rules(self) -> Stage:
        if self.production:
            if self.account is None:
                raise ValueError(
                    'a production stage must name its account; add account = "123456789012" '
                    "so it can never be deployed to whatever account the caller's credentials point at"
                )
            if self.data.removal_policy != "retain":
                raise ValueError('a production stage must keep its data: set data.removal_policy = "retain"')
            if not self.termination_protection:
                raise ValueError("a production stage needs termination_protection = true")
        if self.notebook.enabled and "notebook" not in self.interface_endpoints:
            raise ValueError(
                "the notebook is enabled but interface_endpoints lacks 'notebook': Jupyter would be "
                "unreachable in a VPC without internet; add 'notebook' or set notebook.enabled = false"
            )
        layout = self.data.layout
        data_prefix, upload_prefix = layout.data_prefix(self.dataset), layout.upload_prefix
        if data_prefix.startswith(upload_prefix) or upload_prefix.startswith(data_prefix):
            raise ValueError(
                f"dataset {self.dataset.name!r} lands under {data_prefix!r}, which overlaps the prefix of "
                f"`rookery local run --data` uploads ({upload_prefix!r}); rename the dataset or set "
                "data.layout.upload_prefix"
            )
        self._notebook_source_rules()
        self._serving_rules()
        if self.monitoring.retrains and not self.ml.requires_approval:
            raise ValueError(
                'monitoring.reaction = "retrain" starts runs nobody asked for, so each version they '
                f'register must wait for a person: set ml.approval_status = "{PENDING_MANUAL_APPROVAL}" '
                f'(it is {self.ml.approval_status!r}) or monitoring.reaction = "notify"'
            )
        if self.ml.training.image == "builtin-xgboost" and self.ml.standardize:
            raise ValueError(
                "ml.standardize needs the project image; the built-in XGBoost image has no preprocessor"
            )
        if self.production:
            if self.log_retention_days < PRODUCTION_MIN_LOG_RETENTION_DAYS:
                raise ValueError(
                    f"a production stage keeps its logs at least {PRODUCTION_MIN_LOG_RETENTION_DAYS} days "
                    f"(it says log_retention_days = {self.log_retention_days}); raise it"
                )
            if not self.ml.requires_approval:
                raise ValueError(
                    f"a production stage registers every model version for a person to approve: set "
                    f'ml.approval_status = "{PENDING_MANUAL_APPROVAL}" (it is {self.ml.approval_status!r})'
                )
        return self

    def _notebook_source_rules(self) -> None:
        notebook = self.notebook
        if not notebook.enabled:
            return
        if not notebook.open_from_vpc_endpoints and not notebook.open_from_cidrs:
            raise ValueError(
                "the notebook is enabled but nothing says where Jupyter may be opened from (control N6: "
                "its URL is served from a public domain); set notebook.open_from_vpc_endpoints (e.g. "
                '["sagemaker.api", "notebook"], for people on a network connected to the VPC) or '
                'notebook.open_from_cidrs (the corporate network\'s ranges, e.g. ["203.0.113.0/24"])'
            )
        own = [e for e in notebook.open_from_vpc_endpoints if e in INTERFACE_ENDPOINTS]
        missing = [e for e in own if e not in self.interface_endpoints]
        if missing:
            raise ValueError(
                f"notebook.open_from_vpc_endpoints names {missing}, which interface_endpoints does not "
                "create; add them to interface_endpoints or remove them"
            )

    def _serving_rules(self) -> None:
        serving = self.serving
        if not serving.enabled:
            if self.monitoring.retrains:
                raise ValueError(
                    'monitoring.reaction = "retrain" reacts to the endpoint\'s monitoring alarms, which a '
                    'stage with serving.enabled = false does not have; set monitoring.reaction = "notify" '
                    "or enable serving"
                )
            return
        if "execute-api" not in self.interface_endpoints:
            raise ValueError(
                "serving is enabled but interface_endpoints lacks 'execute-api': the private inference "
                "API answers only through that endpoint; add 'execute-api' or set serving.enabled = false"
            )
        missing = [e for e in DEPLOYER_ENDPOINTS if e not in self.interface_endpoints]
        if missing:
            raise ValueError(
                f"serving is enabled but interface_endpoints lacks {missing}: the deployer's functions "
                "run in the VPC without internet and reach CloudFormation and EventBridge only through "
                "them; add them or set serving.enabled = false"
            )
        if serving.instance_type not in self.ml.inference_instance_types:
            raise ValueError(
                f"serving.instance_type {serving.instance_type!r} is not among the instance types the "
                f"registered model supports (ml.inference_instance_types = "
                f"{list(self.ml.inference_instance_types)}); SageMaker refuses to host it there: add it "
                "to ml.inference_instance_types or pick one of them"
            )
        if self.production:
            if serving.min_instances < 2:
                raise ValueError(
                    f"a production stage needs serving.min_instances >= 2 (it is {serving.min_instances}): "
                    "one instance is one Availability Zone and no room for a canary in whole instances"
                )
            if serving.deployment.traffic == "all_at_once":
                raise ValueError(
                    'a production stage must deploy with serving.deployment.traffic = "canary" or '
                    '"linear", so a bad model meets only part of the traffic before the alarms stop it'
                )

    @property
    def qualifier(self) -> str:
        """``<prefix>-<stage>``: the name stem of everything this stage creates."""
        return f"{self.prefix}-{self.name}"

    def stack_name(self, component: str) -> str:
        """Stack names are an interface: ``Rookery-<stage>-<Component>``."""
        return f"{self.prefix.capitalize()}-{self.name}-{component}"

    @property
    def removal_destroys_data(self) -> bool:
        return self.data.removal_policy == "destroy" and self.destroy_data_on_delete
