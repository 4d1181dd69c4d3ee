"""Names of the things a stage creates, derived from the stage config in one place.

Pure functions (no CDK): the Network stack needs the Data stack's bucket names for its S3
gateway endpoint policy, and deriving both from config avoids a cross-stack reference cycle.
``account``/``region`` may be CloudFormation tokens (environment-agnostic stages).
"""

from __future__ import annotations

import re
from typing import Final

from rookery_contracts.monitoring import MONITOR_KINDS
from stage.model import ConfigError, Stage

# Buckets of the data lake, by purpose. Interface: the Data stack creates exactly these.
DATA_BUCKETS: Final = ("raw", "curated", "artifacts")
ACCESS_LOG_BUCKET: Final = "access-logs"
ALL_BUCKETS: Final = (*DATA_BUCKETS, ACCESS_LOG_BUCKET)

_ACCOUNT_LEN = 12
# Longest commercial/GovCloud region name today ("ap-southeast-5", "ap-northeast-3"): an
# environment-agnostic stage may be deployed to any of them.
_MAX_REGION_LEN = 14
_MAX_BUCKET_NAME = 63


def bucket_name(stage: Stage, purpose: str, *, account: str, region: str) -> str:
    """``<prefix>-<stage>-<purpose>-<account>-<region>``: globally unique, readable, derivable from config."""
    if purpose not in ALL_BUCKETS:
        raise ValueError(f"unknown bucket purpose {purpose!r}; choose from {ALL_BUCKETS}")
    check_bucket_name_length(stage)
    return f"{stage.qualifier}-{purpose}-{account}-{region}"


def check_bucket_name_length(stage: Stage) -> None:
    """S3 bucket names have at most 63 characters; fail at synth, not at deploy."""
    region_len = len(stage.region) if stage.account else _MAX_REGION_LEN
    longest = max(len(p) for p in ALL_BUCKETS)
    length = len(stage.qualifier) + 1 + longest + 1 + _ACCOUNT_LEN + 1 + region_len
    if length > _MAX_BUCKET_NAME:
        raise ConfigError(
            f"stage {stage.name!r}: prefix + name {stage.qualifier!r} makes S3 bucket names of {length} "
            f"characters (limit {_MAX_BUCKET_NAME}); shorten 'prefix' or the stage name by "
            f"{length - _MAX_BUCKET_NAME} characters"
        )


def glue_database_name(stage: Stage) -> str:
    """Glue and Athena prefer lower-case names with underscores."""
    return stage.qualifier.replace("-", "_")


def raw_table_name(stage: Stage) -> str:
    return f"{stage.dataset.name}_raw"


def curated_table_name(stage: Stage) -> str:
    return f"{stage.dataset.name}_curated"


def athena_workgroup_name(stage: Stage) -> str:
    return stage.qualifier


def delivery_stream_name(stage: Stage) -> str:
    return f"{stage.qualifier}-{stage.dataset.name}-ingest"


def crawler_name(stage: Stage) -> str:
    return f"{stage.qualifier}-{stage.dataset.name}-raw"


ATHENA_RESULTS_PREFIX: Final = "athena-results/"

# An image in a private ECR repository, as every job, model and package of the pipeline names it
# (control T6): <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>, then a tag or a digest.
# Repository names follow ECR's grammar (lower-case path components joined by '.', '_', '-' within
# a component and '/' between components), tags the OCI reference grammar. Groups: account, region,
# repository, and tag or digest. Anchored at both ends (\Z: no trailing newline), so match() is a
# whole-string match.
PRIVATE_ECR_IMAGE: Final = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]+(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))\Z"
)


def project_role_path(stage: Stage) -> str:
    """``/<prefix>-<stage>/``: every role of the stage that other stacks trust by pattern lives below it.

    The Data stack's keys (control K1) admit roles under this path without referencing the stacks
    that create them.
    """
    return f"/{stage.qualifier}/"


def sagemaker_role_path(stage: Stage) -> str:
    """IAM path of the SageMaker execution role: ``/<prefix>-<stage>/sagemaker-execution/``.

    The role keeps a generated name; the Data stack trusts it by this path (an ``aws:PrincipalArn``
    pattern) for D1b, so the Data stack never references the ML stack (no dependency cycle).
    Nothing else of the stage lives under this path.
    """
    return f"{project_role_path(stage)}sagemaker-execution/"


def notebook_role_path(stage: Stage) -> str:
    return f"{project_role_path(stage)}notebook/"


def notebook_instance_name(stage: Stage) -> str:
    """``<prefix>-<stage>-notebook``: people open it by name (CreatePresignedNotebookInstanceUrl)."""
    return f"{stage.qualifier}-notebook"


def stage_tags(stage: Stage) -> dict[str, str]:
    """The tags every stack of the stage puts on each of its resources (CloudFormation passes them on).

    IAM can scope to them where CloudFormation generates a resource's name: the deployer's
    CloudFormation role may touch only models and endpoint configs that carry them.
    """
    return {"project": stage.prefix, "stage": stage.name}


def trigger_rule_name(stage: Stage) -> str:
    """Named, so the queue key's policy can name the one rule that may use it (no reference cycle)."""
    return f"{stage.qualifier}-raw-object-created"


def retrain_rule_name(stage: Stage) -> str:
    """The rule sending the monitoring alarms' ALARM transitions to the trigger (``reaction = "retrain"``);
    named for the same reason as :func:`trigger_rule_name`."""
    return f"{stage.qualifier}-monitoring-alarm-retrain"


# --- serving -------------------------------------------------------------------------------------

# The one production variant of the stage's endpoint. Stable: alarms, autoscaling and the capture
# prefix name it, and a blue/green deployment keeps it.
VARIANT_NAME: Final = "primary"
# Where SageMaker writes data capture in the raw bucket (it appends
# ``<endpoint>/<variant>/yyyy/mm/dd/hh/``) and where ground truth lands: top-level prefixes beside
# the dataset's, never below it, so the pipeline trigger ignores them.
CAPTURE_PREFIX: Final = "capture/"
GROUND_TRUTH_PREFIX: Final = "ground-truth/"


# The Serving stack's CloudFormation parameter holding the live model package version's ARN; empty
# until a version is approved. The deployer changes the endpoint only by updating this parameter.
APPROVED_MODEL_PARAMETER: Final = "ApprovedModelPackageArn"
# The private API's one stage: clients call ``https://<api-id>.execute-api.<region>.amazonaws.com/<stage>``.
API_STAGE_NAME: Final = "v1"


def endpoint_name(stage: Stage) -> str:
    """``<prefix>-<stage>-endpoint``: stable across model versions (clients and the API name it)."""
    return f"{stage.qualifier}-endpoint"


def alarm_names(stage: Stage) -> dict[str, str]:
    """The endpoint's rollback alarms by purpose; fixed names, because the deployment config lists them."""
    base = endpoint_name(stage)
    return {
        "errors": f"{base}-5xx-rate",
        "model_latency": f"{base}-model-latency-p99",
        "overhead_latency": f"{base}-overhead-latency-p99",
    }


def deployer_name(stage: Stage) -> str:
    """The deploy-on-approval state machine (and the prefix of its functions' names)."""
    return f"{stage.qualifier}-deployer"


def approval_rule_name(stage: Stage) -> str:
    return f"{stage.qualifier}-model-approval"


def deployment_role_path(stage: Stage) -> str:
    """IAM path of the CloudFormation service role the deployer passes when it updates the Serving stack."""
    return f"{project_role_path(stage)}serving-deployment/"


def serving_role_path(stage: Stage) -> str:
    """IAM path of the endpoint's model execution role (the Data stack trusts it for data capture)."""
    return f"{project_role_path(stage)}serving-model/"


def api_name(stage: Stage) -> str:
    return f"{stage.qualifier}-inference"


DEPLOYMENT_EVENT_SOURCE: Final = "rookery.deployer"
DEPLOYMENT_EVENT_TYPE: Final = "Rookery Model Deployment"
DEPLOYMENT_METRIC_NAMESPACE: Final = "Rookery/Deployments"


def pipeline_name(stage: Stage) -> str:
    """``<prefix>-<stage>-pipeline``: the stage's SageMaker pipeline (ML stack, trigger and CLI agree)."""
    return f"{stage.qualifier}-pipeline"


def model_package_group_name(stage: Stage) -> str:
    """``<prefix>-<stage>-models``: the stage's model registry group."""
    return f"{stage.qualifier}-models"


def glue_security_configuration_name(stage: Stage) -> str:
    """The crawler's Glue security configuration; its log group is named after it."""
    return f"{stage.qualifier}-catalog"


def key_alias(stage: Stage, purpose: str) -> str:
    """``alias/<prefix>-<stage>/<purpose>``: the stage's customer-managed key for one purpose (e.g. data)."""
    return qualified_key_alias(stage.qualifier, purpose)


def qualified_key_alias(qualifier: str, purpose: str) -> str:
    """:func:`key_alias` from the qualifier alone (constructs get the qualifier, not the stage)."""
    return f"alias/{qualifier}/{purpose}"


# Stand-ins where no account is known: ``rookery pipeline render`` without AWS, the tests and the
# local engine render the definition with these, and the local S3 holds the buckets under them.


def placeholder_bucket_name(stage: Stage, purpose: str) -> str:
    """``<prefix>-<stage>-<purpose>``: a data bucket's offline stand-in (deployed: :func:`bucket_name`)."""
    if purpose not in DATA_BUCKETS:
        raise ValueError(f"unknown bucket purpose {purpose!r}; choose from {DATA_BUCKETS}")
    return f"{stage.qualifier}-{purpose}"


def placeholder_role_name(stage: Stage) -> str:
    """The SageMaker execution role's offline stand-in (deployed, the role has a generated name)."""
    return f"{stage.qualifier}-sagemaker-execution"


def placeholder_image_repository(stage: Stage) -> str:
    """The project image's offline ECR repository (deployed, the CDK bootstrap's asset repository)."""
    return f"{stage.qualifier}-image"


def local_endpoint_name(stage: Stage, purpose: str) -> str:
    """``<prefix>-<stage>-<purpose>``: a local endpoint's default name (``local`` for ``rookery local
    serve``, ``demo`` for the demo's scoring)."""
    return f"{stage.qualifier}-{purpose}"


# --- monitoring ----------------------------------------------------------------------------------

# The Serving stack's parameter holding the S3 prefix of the live version's monitoring baseline (the
# Baseline step's output, as the package's DriftCheckBaselines name its files). Set with
# APPROVED_MODEL_PARAMETER; empty: no monitoring schedule.
MONITORING_BASELINE_PARAMETER: Final = "MonitoringBaselineUri"
# Where monitoring jobs write their reports in the artifacts bucket (then the kind, then SageMaker's
# <endpoint>/<schedule>/yyyy/mm/dd/hh layout).
MONITORING_PREFIX: Final = "monitoring/"


def monitoring_schedule_names(stage: Stage) -> dict[str, str]:
    """The endpoint's monitoring schedules by kind (``data-quality``, ``model-quality``)."""
    return {kind: f"{endpoint_name(stage)}-{kind}" for kind in MONITOR_KINDS}


def monitoring_alarm_names(stage: Stage) -> dict[str, str]:
    """The alarms on each schedule's violation count, by kind."""
    return {kind: f"{name}-violations" for kind, name in monitoring_schedule_names(stage).items()}


def monitoring_role_path(stage: Stage) -> str:
    """IAM path of the monitoring jobs' role (the Data stack trusts it to read capture and ground truth)."""
    return f"/{stage.qualifier}/monitoring/"


def monitoring_topic_name(stage: Stage) -> str:
    return f"{stage.qualifier}-monitoring"
