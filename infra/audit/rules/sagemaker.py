"""rookery's SageMaker rules (N1-N6, R1, H1-H2, M1): the notebook, who may open Jupyter and from
where, manual approval of every registered model, endpoint configs, hosted models and monitoring
jobs."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.rules.pipeline import resolve_text
from infra.audit.template import Template, as_list, flatten, props, resources, statements, target
from stage import PENDING_MANUAL_APPROVAL
from stage.names import PRIVATE_ECR_IMAGE

PRESIGNED_NOTEBOOK_URL: Final = "sagemaker:CreatePresignedNotebookInstanceUrl"
# N6: the condition keys that tie opening Jupyter to a network, and the operators that name it.
SOURCE_CONDITIONS: Final = {
    "aws:sourcevpce": ("stringequals", "foranyvalue:stringequals"),
    "aws:sourceip": ("ipaddress",),
}
REGISTER_MODEL: Final = "sagemaker:CreateModelPackage"
UPDATE_MODEL_PACKAGE: Final = "sagemaker:UpdateModelPackage"
APPROVAL_KEY: Final = "sagemaker:ModelApprovalStatus"
SUPPORTED_NOTEBOOK_PLATFORM_PREFIX: Final = "notebook-al2023-"


@rule(
    id="Rookery-N1",
    control="N1-N4",
    title="Notebook: VPC, no internet, no root, KMS, IMDSv2",
    fix="set RootAccess/DirectInternetAccess Disabled, SubnetId, KmsKeyId, IMDSv2",
)
def _notebook(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::NotebookInstance"):
        p = props(resource)
        if p.get("RootAccess") != "Disabled":
            yield logical_id, "root access is not disabled (the default is Enabled)"
        if p.get("DirectInternetAccess") != "Disabled":
            yield logical_id, "direct internet access is not disabled (the default is Enabled)"
        if not p.get("SubnetId"):
            yield logical_id, "the notebook is not in a subnet of the VPC"
        if not p.get("KmsKeyId"):
            yield logical_id, "the notebook volume is not encrypted with a customer key"
        imds = p.get("InstanceMetadataServiceConfiguration", {})
        if str(imds.get("MinimumInstanceMetadataServiceVersion")) != "2":
            yield logical_id, "the notebook allows IMDSv1"


@rule(
    id="Rookery-N5",
    control="N5",
    title="Notebook: supported platform and an idle auto-stop lifecycle config",
    fix="use an Amazon Linux 2023 platform and a lifecycle configuration with an OnStart script",
)
def _notebook_lifecycle(template: Template) -> Iterator[tuple[str, str]]:
    configs = dict(resources(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig"))
    for logical_id, resource in resources(template, "AWS::SageMaker::NotebookInstance"):
        p = props(resource)
        platform = p.get("PlatformIdentifier")
        if not (isinstance(platform, str) and platform.startswith(SUPPORTED_NOTEBOOK_PLATFORM_PREFIX)):
            yield logical_id, f"platform {platform!r} is not a supported Amazon Linux 2023 notebook platform"
        name = p.get("LifecycleConfigName")
        if name is None:
            yield logical_id, "no lifecycle configuration: nothing stops the notebook when it is idle"
            continue
        config = configs.get(target(name) or "")
        if config is None and not isinstance(name, str):
            yield logical_id, "the lifecycle configuration is not in this template and cannot be checked"
        elif config is not None and not any(h.get("Content") for h in as_list(props(config).get("OnStart"))):
            yield logical_id, "the lifecycle configuration has no OnStart script (the idle auto-stop)"


def _action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _boundaries(template: Template) -> set[str]:
    """Managed policies of this template used as permissions boundaries (ceilings that grant nothing)."""
    return {
        ref
        for _, role in resources(template, "AWS::IAM::Role")
        if (ref := target(props(role).get("PermissionsBoundary")))
    }


def _policy_documents(template: Template) -> Iterator[tuple[str, Any]]:
    """(logical id, policy document) of every identity policy that grants (boundaries excluded)."""
    boundaries = _boundaries(template)
    for logical_id, resource in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        if logical_id not in boundaries:
            yield logical_id, props(resource).get("PolicyDocument")
    for logical_id, resource in resources(template, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for inline in as_list(props(resource).get("Policies")):
            yield logical_id, inline.get("PolicyDocument")


def _allows(statement: Mapping[str, Any], action: str) -> bool:
    actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
    return statement.get("Effect") == "Allow" and any(_action_matches(a, action) for a in actions)


@rule(
    id="Rookery-N6",
    control="N6",
    title="Opening Jupyter is allowed on named notebooks only, through named networks only",
    fix=(
        f"scope {PRESIGNED_NOTEBOOK_URL} to the notebook's ARN and condition it on aws:SourceVpce "
        "(StringEquals) or aws:SourceIp (IpAddress) naming the stage's endpoints or corporate ranges"
    ),
)
def _notebook_url_scope(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, document in _policy_documents(template):
        for statement in statements(document):
            if not _allows(statement, PRESIGNED_NOTEBOOK_URL):
                continue
            for resource in as_list(statement.get("Resource")):
                text = flatten(resource)
                if "*" in text or "?" in text:
                    yield logical_id, f"{PRESIGNED_NOTEBOOK_URL} is allowed on {text!r}, not on one notebook"
            problem = _source_problem(statement)
            if problem:
                yield logical_id, f"{PRESIGNED_NOTEBOOK_URL} {problem}"


def _source_problem(statement: Mapping[str, Any]) -> str | None:
    """Why an allow of the presigned URL is not tied to named networks (None when it is)."""
    sources: list[tuple[str, Any]] = [
        (key.lower(), value)
        for operator, block in (statement.get("Condition") or {}).items()
        if isinstance(block, Mapping)
        for key, value in block.items()
        if operator.lower() in SOURCE_CONDITIONS.get(key.lower(), ())
    ]
    if not sources:
        return (
            "has no aws:SourceVpce (StringEquals) or aws:SourceIp (IpAddress) condition: the URL is "
            "served from a public domain and would open from any network"
        )
    for key, value in sources:
        for item in as_list(value):
            if not isinstance(item, str):
                continue  # a reference: an endpoint id of the stage
            if key == "aws:sourceip":
                try:
                    everything = ipaddress.ip_network(item, strict=False).prefixlen == 0
                except ValueError:
                    return f"names {item!r} in aws:SourceIp, which is not an address range"
                if everything:
                    return f"admits every address ({item}) in aws:SourceIp"
            elif "*" in item or "?" in item:
                return f"admits any VPC endpoint ({item!r}) in aws:SourceVpce"
    return None


def _registration_problem(status: Any, parameters: Mapping[str, Any]) -> str | None:
    """Why a RegisterModel step's ``ModelApprovalStatus`` may be something other than pending."""
    if status is None or status == PENDING_MANUAL_APPROVAL:
        return None  # SageMaker registers a version without a status as PendingManualApproval
    if isinstance(status, Mapping) and str(status.get("Get", "")).startswith("Parameters."):
        name = str(status["Get"]).removeprefix("Parameters.")
        spec = parameters.get(name)
        if spec is None:
            return f"ModelApprovalStatus reads parameter {name}, which the definition does not declare"
        allowed = as_list(spec.get("EnumValues"))
        if allowed != [PENDING_MANUAL_APPROVAL] or spec.get("DefaultValue") != PENDING_MANUAL_APPROVAL:
            return (
                f"ModelApprovalStatus is parameter {name}, which accepts {allowed or 'any value'} at run "
                "time: anyone who may start the pipeline can register an approved version"
            )
        return None
    return f"ModelApprovalStatus is {json.dumps(status)}, not {PENDING_MANUAL_APPROVAL}"


def _role_statements(template: Template, role: str) -> Iterator[Mapping[str, Any]]:
    """Every statement of the identity policies attached to ``role`` in this template."""
    role_resource = template.get("Resources", {}).get(role, {})
    attached = {target(arn) for arn in as_list(props(role_resource).get("ManagedPolicyArns"))}
    for logical_id, resource in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        roles = {target(r) for r in as_list(props(resource).get("Roles"))}
        if role in roles or logical_id in attached:
            yield from statements(props(resource).get("PolicyDocument"))
    for inline in as_list(props(role_resource).get("Policies")):
        yield from statements(inline.get("PolicyDocument"))


def _pending_only(statement: Mapping[str, Any]) -> bool:
    values = [
        value
        for operator, block in (statement.get("Condition") or {}).items()
        if operator.lower() == "stringequals" and isinstance(block, Mapping)
        for key, value in block.items()
        if key.lower() == APPROVAL_KEY.lower()
    ]
    return bool(values) and all(as_list(v) == [PENDING_MANUAL_APPROVAL] for v in values)


def _boundary_denies_approval(template: Template, role: str) -> list[str]:
    """What the role's permissions boundary fails to deny (R1)."""
    boundary = target(props(template.get("Resources", {}).get(role, {})).get("PermissionsBoundary"))
    policy = template.get("Resources", {}).get(boundary or "")
    if policy is None:
        return ["the role has no permissions boundary in this template to deny approvals"]
    denies = [s for s in statements(props(policy).get("PolicyDocument")) if s.get("Effect") == "Deny"]

    def denied(action: str) -> list[Mapping[str, Any]]:
        return [
            s
            for s in denies
            if any(_action_matches(a, action) for a in as_list(s.get("Action")) if isinstance(a, str))
        ]

    problems = []
    if not any(not s.get("Condition") for s in denied(UPDATE_MODEL_PACKAGE)):
        problems.append(f"its boundary does not deny {UPDATE_MODEL_PACKAGE}")
    if not any(
        operator.lower() == "stringnotequals"
        and as_list(block.get(APPROVAL_KEY)) == [PENDING_MANUAL_APPROVAL]
        for statement in denied(REGISTER_MODEL)
        for operator, block in (statement.get("Condition") or {}).items()
        if isinstance(block, Mapping)
    ):
        problems.append(f"its boundary does not deny {REGISTER_MODEL} unless {APPROVAL_KEY} is pending")
    return problems


@rule(
    id="Rookery-R1",
    control="R1",
    title="Registration is always PendingManualApproval; the pipeline's role cannot approve",
    fix=(
        f'keep ml.approval_status = "{PENDING_MANUAL_APPROVAL}": the definition fixes the status, the '
        f"execution role may {REGISTER_MODEL} only with {APPROVAL_KEY} = {PENDING_MANUAL_APPROVAL}, has no "
        f"{UPDATE_MODEL_PACKAGE}, and its boundary denies both; a stage that may skip approval acknowledges "
        "Rookery::Rookery-R1 on its pipeline with the reason"
    ),
)
def _manual_approval(template: Template) -> Iterator[tuple[str, str]]:
    from pipelines.definition import iter_steps  # noqa: PLC0415 - the pipelines package: only when a pipeline exists

    for logical_id, resource in resources(template, "AWS::SageMaker::Pipeline"):
        body = (props(resource).get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
        try:
            definition = json.loads(resolve_text(body)) if body is not None else None
        except ValueError:
            definition = None
        if not isinstance(definition, Mapping):
            yield logical_id, "the definition is not embedded JSON: its registration status cannot be checked"
            continue
        parameters = {
            str(p.get("Name")): p for p in as_list(definition.get("Parameters")) if isinstance(p, Mapping)
        }
        for step in iter_steps(as_list(definition.get("Steps"))):
            if step.get("Type") == "RegisterModel":
                problem = _registration_problem(
                    step.get("Arguments", {}).get("ModelApprovalStatus"), parameters
                )
                if problem:
                    yield logical_id, f"step {step.get('Name')}: {problem}"
        role = target(props(resource).get("RoleArn"))
        if role is None or role not in template.get("Resources", {}):
            yield logical_id, "the pipeline's execution role is not in this template and cannot be checked"
            continue
        for statement in _role_statements(template, role):
            if _allows(statement, UPDATE_MODEL_PACKAGE):
                yield role, f"the execution role may {UPDATE_MODEL_PACKAGE}: it can approve what it registers"
            if _allows(statement, REGISTER_MODEL) and not _pending_only(statement):
                yield role, f"the execution role may {REGISTER_MODEL} with statuses other than pending"
        for problem in _boundary_denies_approval(template, role):
            yield role, f"the execution role: {problem}"


@rule(
    id="Rookery-H1",
    control="H1",
    title="Endpoint config and data capture encrypted with a customer key",
    fix="set KmsKeyId (and DataCaptureConfig.KmsKeyId)",
)
def _endpoint_config(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::EndpointConfig"):
        p = props(resource)
        if not p.get("KmsKeyId"):
            yield logical_id, "the endpoint's storage is not encrypted with a customer key"
        capture = p.get("DataCaptureConfig")
        if capture is not None and not capture.get("KmsKeyId"):
            yield logical_id, "captured requests and responses are not encrypted with a customer key"


@rule(
    id="Rookery-H2",
    control="H2",
    title="Models run in the VPC with network isolation",
    fix="set VpcConfig and EnableNetworkIsolation",
)
def _model_isolation(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::Model"):
        p = props(resource)
        if not p.get("VpcConfig"):
            yield logical_id, "the model does not run in the VPC"
        if p.get("EnableNetworkIsolation") is not True:
            yield logical_id, "the model container is not network-isolated"


# Where each monitoring resource keeps its job settings: (network, cluster, output config, app spec).
_MONITORING_SHAPES: Final = {
    "AWS::SageMaker::DataQualityJobDefinition": (
        "NetworkConfig",
        "JobResources",
        "DataQualityJobOutputConfig",
        "DataQualityAppSpecification",
    ),
    "AWS::SageMaker::ModelQualityJobDefinition": (
        "NetworkConfig",
        "JobResources",
        "ModelQualityJobOutputConfig",
        "ModelQualityAppSpecification",
    ),
}


def _monitoring_jobs(
    template: Template,
) -> Iterator[tuple[str, Mapping[str, Any], tuple[str, str, str, str]]]:
    """Every monitoring job definition: the job definitions, and schedules that define their job inline."""
    for kind, shape in _MONITORING_SHAPES.items():
        for logical_id, resource in resources(template, kind):
            yield logical_id, props(resource), shape
    inline = ("NetworkConfig", "MonitoringResources", "MonitoringOutputConfig", "MonitoringAppSpecification")
    for logical_id, resource in resources(template, "AWS::SageMaker::MonitoringSchedule"):
        job = (props(resource).get("MonitoringScheduleConfig") or {}).get("MonitoringJobDefinition")
        if job is not None:
            yield logical_id, job, inline


@rule(
    id="Rookery-M1",
    control="M1",
    title="Monitoring jobs run in the VPC, isolated, encrypted, on the project image",
    fix="set NetworkConfig (VpcConfig, EnableNetworkIsolation, EnableInterContainerTrafficEncryption), "
    "the cluster's VolumeKmsKeyId, the output config's KmsKeyId and a private ECR ImageUri",
)
def _monitoring_jobs_perimeter(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, job, (network_key, cluster_key, output_key, app_key) in _monitoring_jobs(template):
        network = job.get(network_key) or {}
        if not network.get("VpcConfig"):
            yield logical_id, "the monitoring job does not run in the VPC"
        if network.get("EnableNetworkIsolation") is not True:
            yield logical_id, "the monitoring job is not network-isolated"
        if network.get("EnableInterContainerTrafficEncryption") is not True:
            yield logical_id, "the monitoring job's inter-container traffic is not encrypted"
        if not ((job.get(cluster_key) or {}).get("ClusterConfig") or {}).get("VolumeKmsKeyId"):
            yield logical_id, "the monitoring job's volume is not encrypted with a customer key"
        if not (job.get(output_key) or {}).get("KmsKeyId"):
            yield logical_id, "the monitoring job's reports are not encrypted with a customer key"
        image = (job.get(app_key) or {}).get("ImageUri")
        if isinstance(image, str) and not PRIVATE_ECR_IMAGE.match(image):
            yield logical_id, f"the monitoring job runs {image!r}, not an image of a private ECR repository"
        elif image is None:
            yield logical_id, "the monitoring job names no image"
