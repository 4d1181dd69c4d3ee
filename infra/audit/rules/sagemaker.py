"""rookery's SageMaker rules (N1-N6, H1-H2, M1): the notebook, who may open Jupyter, endpoint configs,
hosted models and monitoring jobs."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.template import Template, as_list, flatten, props, resources, statements, target
from stage.names import PRIVATE_ECR_IMAGE

PRESIGNED_NOTEBOOK_URL: Final = "sagemaker:CreatePresignedNotebookInstanceUrl"
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


@rule(
    id="Rookery-N6",
    control="N6",
    title="Opening Jupyter is allowed on named notebooks only",
    fix=f"scope {PRESIGNED_NOTEBOOK_URL} to the notebook's ARN",
)
def _notebook_url_scope(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, document in _policy_documents(template):
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
            if not any(_action_matches(a, PRESIGNED_NOTEBOOK_URL) for a in actions):
                continue
            for resource in as_list(statement.get("Resource")):
                text = flatten(resource)
                if "*" in text or "?" in text:
                    yield logical_id, f"{PRESIGNED_NOTEBOOK_URL} is allowed on {text!r}, not on one notebook"


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
