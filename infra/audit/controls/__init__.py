"""The catalogue of security controls every stage must meet: the one source of the control ids.

Each control says what must be true, where it lives in CloudFormation (or in the pipeline
definition), which cdk-nag pack rules and which tests check it, and whether it is built yet.
rookery's own rules name the control they check (``infra.audit.rules``); ``docs/controls.md`` is
rendered from this module together with those rules (``python -m infra.audit.controls``), and a
test keeps the committed file equal to the output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from infra.audit.guard import CROSS_STACK_RULES, GUARD_PACK
from stage import REPO_ROOT

if TYPE_CHECKING:
    from infra.audit.rules import RulePack

Status = Literal["implemented", "partial", "planned"]

# Where the catalogue is published, relative to the repository (the report and comments cite it).
DOCUMENT: Final = "docs/controls.md"
DOCUMENT_PATH: Final = REPO_ROOT / DOCUMENT
COMMAND: Final = "python -m infra.audit.controls > docs/controls.md"

AREAS: Final = ("Network", "Data", "SageMaker", "Compute and access")

STATUS_MEANING: Final[Mapping[Status, str]] = {
    "implemented": "built in every stage and proven by the tests listed",
    "partial": "part of it is built; the note says what is missing",
    "planned": "specified, not built yet; the note says what exists today",
}


@dataclass(frozen=True)
class Control:
    id: str
    area: str
    title: str  # what must be true
    where: str  # the CloudFormation resources or definition fields that carry it
    status: Status
    pack_rules: tuple[
        str, ...
    ] = ()  # cdk-nag and Control Tower rules that check it, as the report names them
    tests: tuple[str, ...] = ()  # test files that prove it on the synthesized output
    note: str = ""  # what is missing (partial, planned), or what else enforces it


_NETWORK_TESTS: Final = ("tests/infra/test_infra_network.py",)
_DATA_TESTS: Final = ("tests/infra/test_infra_data.py",)
_NOTEBOOK_TESTS: Final = ("tests/infra/test_infra_ml_notebook.py",)
_PIPELINE_TESTS: Final = (
    "tests/infra/test_infra_ml_pipeline.py",
    "tests/pipelines/test_pipeline_validate.py",
)
_IAM_TESTS: Final = ("tests/infra/test_infra_ml_iam.py",)
_DEPLOYER_TESTS: Final = (
    "tests/infra/test_infra_deployer.py",
    "tests/infra/test_infra_deployer_flow.py",
    "tests/lambdas/test_model_deployer_moto.py",
)
_SERVING_RULE_TESTS: Final = ("tests/infra/test_infra_serving_rules.py",)
_NIST: Final = "NIST.800.53.R5-"
_SERVING_TESTS: Final = ("tests/infra/test_infra_serving.py",)
_API_TESTS: Final = ("tests/infra/test_infra_serving_api.py",)
_PIPELINE_ALSO: Final = "`rookery pipeline validate` runs the same perimeter check on any rendered definition"
_GUARDRAILS_TOO: Final = (
    f"{_PIPELINE_ALSO}; the guardrails boundary (I2) also denies, at run time, a job or model "
    "launched without it"
)
_NOTEBOOK_GUARDRAIL: Final = "the guardrails boundary (I2) also denies creating a notebook without it"
# AWS Control Tower's proactive controls, as the cfn-guard plugin names its rules (infra.audit.guard).
_LOG_GROUP_RULES: Final = (
    "cloudwatch_log_group_encrypted_check",
    "cloudwatch_log_group_retention_period_check",
)
_GUARD_CROSS_STACK: Final = (
    "Control Tower's rule reads the Network stack's subnet, a cross-stack reference, as missing: "
    "acknowledged with that reason (docs/controls.md, last section)"
)

CONTROLS: Final[tuple[Control, ...]] = (
    # ---------------------------------------------------------------- network
    Control(
        "V1",
        "Network",
        "VPC with private isolated subnets only: no internet gateway, no NAT; flow logs to a "
        "KMS-encrypted log group with retention; default security group closed",
        "`AWS::EC2::VPC`, `AWS::EC2::FlowLog`, `restrict_default_security_group`",
        "implemented",
        pack_rules=(
            "AwsSolutions-VPC7",
            f"{_NIST}VPCFlowLogsEnabled",
            f"{_NIST}VPCDefaultSecurityGroupClosed",
            f"{_NIST}VPCNoUnrestrictedRouteToIGW",
            f"{_NIST}VPCSubnetAutoAssignPublicIpDisabled",
            *_LOG_GROUP_RULES,
        ),
        tests=_NETWORK_TESTS,
    ),
    Control(
        "V2",
        "Network",
        "Interface endpoints accept 443 only from workload security groups (`open=False`) and "
        "carry an endpoint policy",
        "`AWS::EC2::VPCEndpoint`, security-group rules",
        "implemented",
        pack_rules=("AwsSolutions-EC23",),
        tests=_NETWORK_TESTS,
    ),
    Control(
        "D2",
        "Network",
        "The S3 gateway endpoint policy allows only the project's buckets plus the AWS-owned buckets "
        "the workloads truly need (ECR image layers, for example), each with a reason",
        "`AWS::EC2::VPCEndpoint.PolicyDocument`",
        "implemented",
        tests=_NETWORK_TESTS,
    ),
    # ---------------------------------------------------------------- data
    Control(
        "D1",
        "Data",
        "Buckets: SSE-KMS with a customer key and bucket keys, TLS-only policy, all public access "
        "blocked, versioning, server access logs to a log bucket, lifecycle rules",
        "`AWS::S3::Bucket`, `AWS::S3::BucketPolicy`",
        "implemented",
        pack_rules=(
            "AwsSolutions-S1",
            "AwsSolutions-S2",
            "AwsSolutions-S10",
            f"{_NIST}S3BucketLevelPublicAccessProhibited",
            f"{_NIST}S3BucketLoggingEnabled",
            f"{_NIST}S3BucketPublicReadProhibited",
            f"{_NIST}S3BucketPublicWriteProhibited",
            f"{_NIST}S3BucketReplicationEnabled",
            f"{_NIST}S3BucketSSLRequestsOnly",
            f"{_NIST}S3BucketVersioningEnabled",
            f"{_NIST}S3DefaultEncryptionKMS",
            "s3_bucket_default_encryption_kms_check",
            "s3_bucket_logging_enabled_check",
            "s3_bucket_object_lock_enabled_check",
            "s3_event_notifications_enabled_check",
        ),
        tests=_DATA_TESTS,
    ),
    Control(
        "D1b",
        "Data",
        "Data buckets deny access that does not come through the project's VPC endpoint, except "
        "named principals (services working outside the VPC for the project, the deployment role) "
        "and requests via named services (`aws:CalledVia`: Athena); each exception carries its "
        "written reason in the template",
        "bucket policy `aws:SourceVpce`; the policy's `rookery:vpc-endpoint-exceptions` metadata",
        "implemented",
        tests=_DATA_TESTS,
    ),
    Control(
        "D3",
        "Data",
        "Customer-managed KMS keys per purpose (data, artifacts, logs), rotation on, key policy "
        "without an unconditioned `*` principal, `kms:ViaService` where it fits; retained on delete",
        "`AWS::KMS::Key`",
        "implemented",
        pack_rules=("AwsSolutions-KMS5", f"{_NIST}KMSBackingKeyRotationEnabled"),
        tests=_DATA_TESTS,
    ),
    Control(
        "D4",
        "Data",
        "Glue catalog encryption settings and a security configuration on the crawler",
        "`AWS::Glue::DataCatalogEncryptionSettings`, `AWS::Glue::SecurityConfiguration`",
        "implemented",
        pack_rules=("AwsSolutions-GL1", "AwsSolutions-GL3"),
        tests=_DATA_TESTS,
    ),
    Control(
        "D5",
        "Data",
        "The Athena workgroup enforces its configuration and writes KMS-encrypted results into the "
        "project bucket",
        "`AWS::Athena::WorkGroup`",
        "implemented",
        tests=_DATA_TESTS,
    ),
    Control(
        "D6",
        "Data",
        "Firehose encrypts at rest with a customer key, delivers KMS-encrypted objects, sends failed "
        "records to an error prefix, logs to CloudWatch",
        "`AWS::KinesisFirehose::DeliveryStream`",
        "implemented",
        pack_rules=("AwsSolutions-KDF1",),
        tests=_DATA_TESTS,
    ),
    Control(
        "D7",
        "Data",
        "Stateful data (buckets, keys, registry) survives `cdk destroy` unless the stage explicitly "
        "allows deletion",
        "`DeletionPolicy` and `UpdateReplacePolicy` of the stateful resource types",
        "implemented",
        tests=(*_DATA_TESTS, "tests/infra/test_infra_ml_pipeline.py"),
    ),
    # ---------------------------------------------------------------- SageMaker
    Control(
        "N1",
        "SageMaker",
        "The notebook runs in a private subnet of the stage's VPC, behind a security group",
        "`AWS::SageMaker::NotebookInstance.SubnetId`, `SecurityGroupIds`",
        "implemented",
        pack_rules=("AwsSolutions-SM1", "sagemaker_notebook_instance_inside_vpc_check"),
        tests=_NOTEBOOK_TESTS,
        note=f"{_NOTEBOOK_GUARDRAIL}; {_GUARD_CROSS_STACK}",
    ),
    Control(
        "N2",
        "SageMaker",
        "The notebook has no direct internet access (the default is Enabled)",
        "`AWS::SageMaker::NotebookInstance.DirectInternetAccess`",
        "implemented",
        pack_rules=(
            "AwsSolutions-SM3",
            f"{_NIST}SageMakerNotebookNoDirectInternetAccess",
            "sagemaker_notebook_no_direct_internet_access_check",
        ),
        tests=_NOTEBOOK_TESTS,
        note=f"{_NOTEBOOK_GUARDRAIL}; {_GUARD_CROSS_STACK}",
    ),
    Control(
        "N3",
        "SageMaker",
        "Root access on the notebook is disabled (the default is Enabled)",
        "`AWS::SageMaker::NotebookInstance.RootAccess`",
        "implemented",
        tests=_NOTEBOOK_TESTS,
        note=_NOTEBOOK_GUARDRAIL,
    ),
    Control(
        "N4",
        "SageMaker",
        "The notebook's volume is encrypted with a customer key, and its instance metadata service "
        "accepts IMDSv2 only",
        "`AWS::SageMaker::NotebookInstance.KmsKeyId`, `InstanceMetadataServiceConfiguration`",
        "implemented",
        pack_rules=("AwsSolutions-SM2", f"{_NIST}SageMakerNotebookInstanceKMSKeyConfigured"),
        tests=_NOTEBOOK_TESTS,
        note=_NOTEBOOK_GUARDRAIL,
    ),
    Control(
        "N5",
        "SageMaker",
        "The notebook runs a supported platform and a lifecycle configuration that stops it when "
        "idle, without internet access",
        "`AWS::SageMaker::NotebookInstance.PlatformIdentifier`, "
        "`AWS::SageMaker::NotebookInstanceLifecycleConfig`",
        "implemented",
        tests=_NOTEBOOK_TESTS,
    ),
    Control(
        "N6",
        "SageMaker",
        "Only the intended people, through the intended path, can open Jupyter: "
        "`CreatePresignedNotebookInstanceUrl` scoped to the notebook and conditioned on "
        "`aws:SourceVpce` or `aws:SourceIp` (the presigned URL is served from a public domain, so "
        "without a source condition the VPC perimeter does not apply)",
        "IAM: the notebook's open policy; the stage's `notebook.open_from_vpc_endpoints` / `open_from_cidrs`",
        "implemented",
        tests=(*_NOTEBOOK_TESTS, "tests/infra/test_infra_ml_rules.py", "tests/config/test_config_stages.py"),
        note="scoped to the notebook's ARN, attached to the named roles only; by default only through the "
        "stage's own `sagemaker.api` and `notebook` endpoints; SageMaker evaluates the policy again for "
        "every HTTP request and WebSocket frame of the session",
    ),
    Control(
        "N7",
        "SageMaker",
        "The notebook has a security group of its own: it cannot reach job or endpoint instances",
        "`AWS::SageMaker::NotebookInstance.SecurityGroupIds`, security-group rules",
        "implemented",
        tests=(*_NOTEBOOK_TESTS, *_NETWORK_TESTS, *_IAM_TESTS),
        note="its group has egress on 443 to the interface endpoints and S3 only, and nothing admits it "
        "but the endpoints; the guardrails boundary denies a notebook in any other group, and jobs "
        "or models in the notebook's",
    ),
    Control(
        "R1",
        "SageMaker",
        "Registration is always `PendingManualApproval` where a stage requires approval: the "
        "execution role cannot create approved packages or update approval status",
        "pipeline parameter `ModelApprovalStatus`, IAM condition `sagemaker:ModelApprovalStatus`, boundary",
        "implemented",
        tests=(
            *_IAM_TESTS,
            "tests/infra/test_infra_ml_rules.py",
            "tests/pipelines/test_pipeline_definition.py",
            "tests/pipelines/test_pipeline_settings.py",
        ),
        note="the parameter's `EnumValues` is `PendingManualApproval` alone (the local engine and "
        "`--param` refuse another value); the execution role may `CreateModelPackage` only with that "
        "status and has no `UpdateModelPackage`; the boundary denies both; a production stage must "
        "require approval",
    ),
    Control(
        "T1",
        "SageMaker",
        "Every processing, training, tuning and transform job (and the model it creates) runs in the "
        "stage's VPC: its subnets and security groups",
        "pipeline definition inside `AWS::SageMaker::Pipeline`: `VpcConfig`, `NetworkConfig`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_GUARDRAILS_TOO,
    ),
    Control(
        "T2",
        "SageMaker",
        "Every job and model of the pipeline runs with network isolation (the jobs need no network); "
        "verified on the output, because the SDK's tuner drops the flag",
        "pipeline definition: `EnableNetworkIsolation`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_GUARDRAILS_TOO,
    ),
    Control(
        "T3",
        "SageMaker",
        "Every job of the pipeline encrypts inter-container traffic; verified on the output, because "
        "the SDK's tuner drops the flag",
        "pipeline definition: `EnableInterContainerTrafficEncryption`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_GUARDRAILS_TOO,
    ),
    Control(
        "T4",
        "SageMaker",
        "Every job of the pipeline encrypts its volumes and outputs with the stage's KMS keys",
        "pipeline definition: `VolumeKmsKeyId`, output `KmsKeyId`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_GUARDRAILS_TOO,
    ),
    Control(
        "T5",
        "SageMaker",
        "Spot training has a checkpoint URI and a bounded wait",
        "pipeline definition: `CheckpointConfig`, `StoppingCondition.MaxWaitTimeInSeconds`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_PIPELINE_ALSO,
    ),
    Control(
        "T6",
        "SageMaker",
        "Images come from the project's private ECR repository (an exception, such as the built-in "
        "XGBoost image, carries a written reason in the step)",
        "pipeline definition: `TrainingImage`, `ImageUri`, `Image`",
        "implemented",
        tests=_PIPELINE_TESTS,
        note=_PIPELINE_ALSO,
    ),
    Control(
        "H1",
        "SageMaker",
        "Endpoint configs encrypt their storage and captured data with a customer key",
        "`AWS::SageMaker::EndpointConfig.KmsKeyId`, `DataCaptureConfig.KmsKeyId`",
        "implemented",
        pack_rules=(f"{_NIST}SageMakerEndpointConfigurationKMSKeyConfigured",),
        tests=(*_SERVING_TESTS, "tests/infra/test_infra_serving_props.py", *_SERVING_RULE_TESTS),
        note="an instance type with NVMe instance storage, where SageMaker rejects a volume key, needs "
        '`serving.volume_encryption = "instance-storage"` and records the reason in the template',
    ),
    Control(
        "H2",
        "SageMaker",
        "Hosted models run in the VPC with network isolation",
        "`AWS::SageMaker::Model.VpcConfig`, `EnableNetworkIsolation`",
        "implemented",
        tests=(*_SERVING_TESTS, *_SERVING_RULE_TESTS),
        note="the model has a security group of its own without ingress; the pipeline's own CreateModel "
        "step is checked by T1 and T2",
    ),
    Control(
        "H3",
        "SageMaker",
        "Only the API's integration role may call `InvokeEndpoint`, on that endpoint's ARN",
        "IAM",
        "implemented",
        tests=(*_API_TESTS, *_SERVING_RULE_TESTS),
    ),
    Control(
        "H4",
        "SageMaker",
        "Production variants run at least two instances in prod (enough for a canary in whole "
        "instances); autoscaling bounds set",
        "`AWS::SageMaker::EndpointConfig`, `AWS::ApplicationAutoScaling::ScalableTarget`",
        "implemented",
        tests=(*_SERVING_TESTS, "tests/config/test_config_serving.py", *_SERVING_RULE_TESTS),
    ),
    Control(
        "H5",
        "SageMaker",
        "Blue/green deployment with auto-rollback alarms on error rate and latency; the deployer "
        "changes the endpoint only through its stack, with a CloudFormation role scoped to that stack",
        "`AWS::SageMaker::Endpoint.DeploymentConfig`, IAM",
        "implemented",
        pack_rules=(f"{_NIST}CloudWatchAlarmAction", "cloudwatch_alarm_action_check"),
        tests=(*_SERVING_TESTS, "tests/config/test_config_alarms.py", *_DEPLOYER_TESTS, *_SERVING_RULE_TESTS),
        note="the deployer (an approval rule starting a Step Functions state machine) updates only the "
        "Serving stack's model parameter, through a CloudFormation service role scoped to that stack's "
        "resources, and verifies the live endpoint; no other role may change an endpoint",
    ),
    Control(
        "M1",
        "SageMaker",
        "Monitoring jobs run like every other job: VPC, network isolation, inter-container "
        "encryption, KMS on volume and output, the project image",
        "`AWS::SageMaker::MonitoringSchedule.MonitoringJobDefinition`, "
        "`AWS::SageMaker::DataQualityJobDefinition`, `AWS::SageMaker::ModelQualityJobDefinition`",
        "implemented",
        tests=("tests/infra/test_infra_monitoring.py", "tests/infra/test_infra_rules.py"),
        note="data quality runs as a schedule with an inline job definition (custom image), model quality "
        "as a ModelQualityJobDefinition (the resource that takes ground truth); the construct refuses "
        "props without isolation or traffic encryption, and the guardrails boundary denies creating "
        "monitoring schedules or job definitions outside the perimeter",
    ),
    # ---------------------------------------------------------------- compute and access
    Control(
        "L1",
        "Compute and access",
        "Lambdas: current runtime, in the VPC, reserved concurrency, on-failure destination or DLQ "
        "(and EventBridge targets with a DLQ and bounded retries), X-Ray, log retention, "
        "least-privilege role",
        "`AWS::Lambda::Function`, `AWS::Events::Rule` targets",
        "implemented",
        pack_rules=(
            "AwsSolutions-L1",
            "AwsSolutions-SQS3",
            f"{_NIST}LambdaConcurrency",
            f"{_NIST}LambdaDLQ",
            f"{_NIST}LambdaInsideVPC",
            "lambda_inside_vpc_check",
            "sqs_dlq_check",
            *_LOG_GROUP_RULES,
        ),
        tests=(*_DATA_TESTS, "tests/infra/test_infra_ml_trigger.py", "tests/infra/test_infra_deployer.py"),
        note="Control Tower's Lambda rule reads the Network stack's subnets, a cross-stack reference, as "
        "missing: acknowledged with that reason (docs/controls.md, last section)",
    ),
    Control(
        "A1",
        "Compute and access",
        "API: private (execute-api VPC endpoint, resource policy on `aws:SourceVpce`), IAM "
        "authorization, request size limit, access logs (KMS), throttling, X-Ray",
        "`AWS::ApiGateway::*`, `AWS::WAFv2::WebACL`",
        "implemented",
        pack_rules=(
            *_LOG_GROUP_RULES,
            "AwsSolutions-APIG1",
            "AwsSolutions-APIG2",
            "AwsSolutions-APIG3",
            "AwsSolutions-APIG4",
            "AwsSolutions-APIG6",
            "AwsSolutions-COG4",
            f"{_NIST}APIGWAssociatedWithWAF",
            f"{_NIST}APIGWCacheEnabledAndEncrypted",
            f"{_NIST}APIGWExecutionLoggingEnabled",
            f"{_NIST}APIGWSSLEnabled",
            f"{_NIST}WAFv2LoggingEnabled",
        ),
        tests=(*_API_TESTS, "tests/infra/test_infra_serving_props.py", *_SERVING_RULE_TESTS),
        note="the size limit is a WAF rule on `Content-Length` (413 above SageMaker's 6 MB); a request "
        "without one meets API Gateway's fixed 10 MB limit, then SageMaker's",
    ),
    Control(
        "K1",
        "Compute and access",
        "Key policies deny grant creation unless for an AWS resource; data and artifacts keys usable "
        "only by the project's roles and the services acting for them",
        "`AWS::KMS::Key.KeyPolicy`",
        "implemented",
        pack_rules=("kms_create_grant_aws_service_check",),
        tests=_DATA_TESTS,
        note="every key denies `kms:CreateGrant` unless `kms:GrantIsForAWSResource` or an AWS service "
        "principal (Control Tower CT.KMS.PR.3); the data and artifacts keys deny use to principals of the "
        "account other than the deployment role, the Data stack's Firehose, transform and crawler roles "
        "and the roles under the stage's IAM path (`/<prefix>-<stage>/`); the account root keeps "
        "administering every key",
    ),
    Control(
        "E1",
        "Compute and access",
        "ECR endpoint policies admit only the project's account (plus explicitly allowed image accounts)",
        "`AWS::EC2::VPCEndpoint` (`ecr.api`, `ecr.dkr`)",
        "implemented",
        tests=(*_NETWORK_TESTS, "tests/infra/test_infra_rules.py"),
        note="a stage that trains on SageMaker's built-in image (a T6 exception with its reason) adds "
        "that registry's account, read from the rendered definition",
    ),
    Control(
        "I1",
        "Compute and access",
        "No AWS-managed FullAccess policies; `iam:PassRole` only for the SageMaker execution role with "
        "`iam:PassedToService`; resource-scoped actions",
        "`AWS::IAM::*`",
        "implemented",
        pack_rules=(
            "AwsSolutions-IAM4",
            "AwsSolutions-IAM5",
            f"{_NIST}IAMNoInlinePolicy",
            f"{_NIST}IAMPolicyNoStatementsWithAdminAccess",
            f"{_NIST}IAMPolicyNoStatementsWithFullAccess",
            "iam_managed_policy_no_statements_with_full_access_check",
        ),
        tests=_IAM_TESTS,
    ),
    Control(
        "I2",
        "Compute and access",
        "Every SageMaker role carries the guardrails permissions boundary: it denies jobs, models and "
        "notebooks outside the stage's subnets and security groups, without its KMS keys, network "
        "isolation or inter-container encryption, and notebooks with root or direct internet access "
        "(SageMaker condition keys; a missing key is denied too)",
        "`AWS::IAM::Role.PermissionsBoundary`, `AWS::IAM::ManagedPolicy`",
        "implemented",
        tests=_IAM_TESTS,
        note="this is what stops a misconfigured job that Pipelines or a notebook user launches at run time",
    ),
)

CATALOGUE: Final[Mapping[str, Control]] = {c.id: c for c in CONTROLS}

# A control id (V1, D1b) or a range of numbered ids with one letter (N1-N4, T1-T6).
_ID: Final = re.compile(r"[A-Z][1-9][0-9]*[a-z]?[0-9]*")
_RANGE: Final = re.compile(r"(?P<letter>[A-Z])(?P<first>[1-9][0-9]*)-(?P=letter)(?P<last>[1-9][0-9]*)")


class UnknownControlError(ValueError):
    """A reference names no control of the catalogue; the message says which and where to add it."""


def resolve(reference: str) -> tuple[Control, ...]:
    """The controls a reference names: one id (``D1b``) or a range (``N1-N4``)."""
    if _ID.fullmatch(reference):
        ids = [reference]
    elif (match := _RANGE.fullmatch(reference)) and int(match["first"]) < int(match["last"]):
        ids = [f"{match['letter']}{n}" for n in range(int(match["first"]), int(match["last"]) + 1)]
    else:
        raise UnknownControlError(
            f"{reference!r} is not a control id or range; write one id (D1b) or a range (N1-N4)"
        )
    unknown = [i for i in ids if i not in CATALOGUE]
    if unknown:
        raise UnknownControlError(
            f"{reference!r} names no control {unknown} of {DOCUMENT}; add it to infra/audit/controls "
            "and regenerate the document, or cite an existing control"
        )
    return tuple(CATALOGUE[i] for i in ids)


def controls_of_pack_rule(rule_id: str) -> tuple[Control, ...]:
    """The controls a cdk-nag finding belongs to (``AwsSolutions-IAM5[Resource::*]`` -> I1)."""
    rule = rule_id.split("[", 1)[0]
    return tuple(c for c in CONTROLS if rule in c.pack_rules)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(pack: RulePack) -> str:
    """``docs/controls.md``: every control with where it lives, what checks it and its status."""
    checked_by: dict[str, list[str]] = {c.id: [] for c in CONTROLS}
    for rule in pack.rules:
        for control in resolve(rule.control):
            checked_by[control.id].append(rule.id)
    counts = {s: sum(1 for c in CONTROLS if c.status == s) for s in STATUS_MEANING}
    out = [
        "# Security controls",
        "",
        f"<!-- Generated from infra/audit/controls and infra/audit/rules by `{COMMAND}`; "
        "edit those, not this file (a test compares them). -->",
        "",
        "Every control a stage must meet: what must be true, where it lives in CloudFormation (or in "
        "the pipeline definition), and what checks it: cdk-nag and AWS Control Tower (cfn-guard) pack "
        "rules, rookery's own rules "
        "(`infra/audit/rules`, acknowledged as `Rookery::<rule>`) and the tests that prove it on "
        "the synthesized output. Control ids in the code, the README and the audit report "
        "(`rookery audit`) refer to this list.",
        "",
        "Status: "
        + "; ".join(
            f"**{status}** ({counts[status]}): {meaning}" for status, meaning in STATUS_MEANING.items()
        )
        + ".",
        "",
    ]
    for area in AREAS:
        out += [f"## {area}", "", "| id | control | where | checked by | status |", "|---|---|---|---|---|"]
        for c in (c for c in CONTROLS if c.area == area):
            checks = [
                *([f"pack: {', '.join(c.pack_rules)}"] if c.pack_rules else []),
                *([f"rookery: {', '.join(checked_by[c.id])}"] if checked_by[c.id] else []),
                *([f"tests: {', '.join(f'`{t}`' for t in c.tests)}"] if c.tests else []),
            ]
            status = f"**{c.status}**" + (f": {c.note}" if c.note else "")
            cells = [c.id, c.title, c.where, "<br>".join(checks) or "-", status]
            out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        out.append("")
    out += [
        "## rookery's own rules",
        "",
        "The checks no cdk-nag pack makes, run inside `cdk synth` and by `rookery audit`.",
        "",
        "| rule | control | checks | fix | defined in |",
        "|---|---|---|---|---|",
    ]
    for rule in pack.rules:
        module = rule.check.__module__.replace(".", "/") + ".py"
        cells = [rule.id, rule.control, rule.title, rule.fix, f"`{module}`"]
        out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    out += [
        "",
        "## Control Tower rules that cannot read cross-stack references",
        "",
        f"The audit runs AWS Control Tower's proactive controls (`{GUARD_PACK}`, acknowledged as "
        f"`{GUARD_PACK}::<rule>`). These rules accept a property only as a literal or a reference to a "
        "resource of the same template; rookery's stacks pass subnets, security groups and keys from the "
        "Network and Data stacks as cross-stack references (`Fn::GetStackOutput`), which cfn-guard cannot "
        "resolve at synth time. Their findings on such a reference are false positives, acknowledged "
        "with the reason below only where the reference really crosses stacks (`infra/audit/guard.py`).",
        "",
        "| rule | Control Tower id | reads | what proves it instead |",
        "|---|---|---|---|",
    ]
    for guard in CROSS_STACK_RULES.values():
        cells = [guard.rule, guard.control_tower_id, guard.reads, guard.proof]
        out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(out) + "\n"
