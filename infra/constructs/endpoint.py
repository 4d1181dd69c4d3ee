"""Controls H1, H2 and H5: the endpoint that serves the approved model version, and how a new version
replaces the live one.

- ``AWS::SageMaker::Model`` from the approved model package, network-isolated, in the private
  subnets behind a security group of its own (``ModelSecurityGroup``): no ingress at all (SageMaker
  needs none to serve), egress only HTTPS to the VPC's interface endpoints (image pulls, logs, keys)
  and to S3 through the gateway endpoint (model artifacts).
- ``AWS::SageMaker::EndpointConfig`` with one production variant, its storage volume encrypted with
  the artifacts key (left out, with the reason in the template, only for instance types whose local
  NVMe storage SageMaker encrypts itself and where it rejects a key), and data capture of requests
  and responses, encrypted with the data key. SageMaker writes capture files to
  ``s3://<capture bucket>/<capture prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``.
- ``AWS::SageMaker::Endpoint`` with a stable name and a blue/green deployment config: canary,
  linear or all-at-once traffic shifting with a bake after each step, a termination wait, a maximum
  execution time, and auto-rollback on the rollback alarms. ``RetainAllVariantProperties`` keeps
  the instance count autoscaling has set across model swaps; data capture stays excluded, so a
  change to it still applies.

The model, config and endpoint exist only under ``condition`` (a version has been approved). A model
swap replaces the model and the config (their properties require replacement) and updates the
endpoint in place; SageMaker allows a model change on an autoscaled variant, not an instance-type
change (deregister autoscaling first, see the SageMaker guide on updating autoscaled endpoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import CfnCondition, CfnResource
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.audit.acknowledge import acknowledge
from infra.constructs.props import PropsError, check_prefix
from stage.serving import DeploymentPolicy, has_instance_storage

HTTPS: Final = 443
# Template metadata: why the endpoint config names no volume KMS key (read by reviewers and the audit).
VOLUME_ENCRYPTION_METADATA: Final = "rookery:volume-encryption"
_TRAFFIC: Final = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}


@dataclass(frozen=True, kw_only=True)
class EndpointProps:
    """The endpoint's settings (the stage's ``[serving]``); isolation, the VPC, capture of input and
    output, its encryption and auto-rollback are not options."""

    endpoint_name: str
    variant_name: str
    model_package: str  # the approved version's ARN (the Serving stack's parameter)
    instance_type: str
    initial_instance_count: int
    capture_prefix: str  # raw-bucket prefix; SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh/
    capture_sampling_percent: int
    capture_csv_content_types: tuple[str, ...]  # what the image serves, recorded as text
    capture_json_content_types: tuple[str, ...]
    deployment: DeploymentPolicy
    rollback_alarm_names: tuple[str, ...]
    instance_storage_reason: str | None = None
    """Secure default: None, the storage volume is encrypted with the volume key the construct is given.
    Only an instance type with local NVMe storage (``stage.serving.INSTANCE_STORAGE_FAMILIES``), where
    SageMaker rejects a key, takes a reason instead; the template records it."""

    def __post_init__(self) -> None:
        storage = has_instance_storage(self.instance_type)
        if storage and not self.instance_storage_reason:
            raise PropsError(
                self,
                "instance_storage_reason",
                f"{self.instance_type} has NVMe instance storage, where SageMaker rejects a volume KMS key; "
                "say why the instance's own encryption is accepted, or choose a type without it",
            )
        if not storage and self.instance_storage_reason is not None:
            raise PropsError(
                self,
                "instance_storage_reason",
                f"{self.instance_type} has an EBS volume, which must be encrypted with the volume key; "
                "leave the reason out",
            )
        if self.initial_instance_count < 1:
            raise PropsError(self, "initial_instance_count", "an endpoint needs at least 1 instance")
        check_prefix(self, "capture_prefix")
        if not 0 <= self.capture_sampling_percent <= 100:
            raise PropsError(self, "capture_sampling_percent", "a percentage: 0 to 100")
        if not self.capture_csv_content_types and not self.capture_json_content_types:
            raise PropsError(
                self,
                "capture_json_content_types",
                "with no CSV types either, capture would record every payload as base64; list the "
                "content types the image serves",
            )
        if not self.rollback_alarm_names:
            raise PropsError(
                self,
                "rollback_alarm_names",
                "a blue/green deployment without alarms cannot roll back automatically; pass the "
                "rollback alarms' names",
            )

    @property
    def volume_key_required(self) -> bool:
        return self.instance_storage_reason is None


def traffic_routing(policy: DeploymentPolicy) -> dict[str, Any]:
    """``TrafficRoutingConfiguration`` for the policy: sizes in whole instances, the bake after each step."""
    routing: dict[str, Any] = {"Type": _TRAFFIC[policy.traffic], "WaitIntervalInSeconds": policy.wait_seconds}
    if policy.traffic == "canary":
        routing["CanarySize"] = {"Type": "INSTANCE_COUNT", "Value": policy.canary_instances}
    elif policy.traffic == "linear":
        routing["LinearStepSize"] = {"Type": "INSTANCE_COUNT", "Value": policy.linear_step_instances}
    return routing


def deployment_config(policy: DeploymentPolicy, alarm_names: Sequence[str]) -> dict[str, Any]:
    """The endpoint's ``DeploymentConfig``: blue/green with auto-rollback on ``alarm_names``."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": traffic_routing(policy),
            "TerminationWaitInSeconds": policy.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": policy.maximum_execution_timeout_seconds,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


@dataclass(frozen=True, kw_only=True)
class ModelSecurityGroupProps:
    endpoint_name: str  # names the group and its rules

    def __post_init__(self) -> None:
        if not self.endpoint_name:
            raise PropsError(self, "endpoint_name", "name the endpoint whose model the group holds")


class ModelSecurityGroup(Construct):
    """The model's own security group. Exposes ``security_group``.

    No ingress rule at all: SageMaker sends requests to the model over its own network, never through
    this group. Egress: HTTPS to the interface endpoints (whose group admits this one on 443) and
    HTTPS towards S3, which only the gateway endpoint's route reaches.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ModelSecurityGroupProps,
        vpc: ec2.IVpc,
        endpoint_security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        endpoint_name = props.endpoint_name
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{endpoint_name} model: no ingress; HTTPS out to the VPC endpoints and S3",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            endpoint_security_group, ec2.Port.tcp(HTTPS), "HTTPS to the interface endpoints"
        )
        # S3's prefix list id differs per region and cannot be resolved offline for an
        # environment-agnostic stage; 443 to any address reaches nothing else, because the route
        # tables hold no route out of the VPC but the S3 gateway endpoint's prefix list.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(HTTPS),
            "HTTPS to S3 via the gateway endpoint (the only route out)",
        )
        # The interface endpoints admit HTTPS from workload security groups only; this is one.
        self.endpoint_ingress = ec2.CfnSecurityGroupIngress(
            self,
            "EndpointIngress",
            group_id=endpoint_security_group.security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description=f"HTTPS from the {endpoint_name} model to the interface endpoints",
        )


class ServingEndpoint(Construct):
    """Exposes, all under ``condition``: ``model``, ``endpoint_config``, ``endpoint`` (L1 resources)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: EndpointProps,
        condition: CfnCondition,
        role: iam.IRole,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        volume_key: kms.IKey | None,
        capture_bucket: s3.IBucket,
        capture_key: kms.IKey,
    ) -> None:
        if (volume_key is not None) != props.volume_key_required:
            raise ValueError(
                f"ServingEndpoint {construct_id!r}: pass the volume key (the artifacts key) unless "
                "EndpointProps.instance_storage_reason says why the instance type takes none; never both"
            )
        if not subnets:
            raise ValueError(f"ServingEndpoint {construct_id!r}: the model needs the VPC's private subnets")
        super().__init__(scope, construct_id)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=props.model_package
            ),
            enable_network_isolation=True,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                subnets=[s.subnet_id for s in subnets], security_group_ids=[security_group.security_group_id]
            ),
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=props.variant_name,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=props.initial_instance_count,
                    instance_type=props.instance_type,
                    initial_variant_weight=1,
                )
            ],
            kms_key_id=volume_key.key_arn if volume_key is not None else None,
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=props.capture_sampling_percent,
                # SageMaker appends /<endpoint>/<variant>/...: the prefix without its trailing '/'.
                destination_s3_uri=f"s3://{capture_bucket.bucket_name}/{props.capture_prefix.rstrip('/')}",
                kms_key_id=capture_key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
                    for mode in ("Input", "Output")
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=list(props.capture_csv_content_types) or None,
                    json_content_types=list(props.capture_json_content_types) or None,
                ),
            ),
        )
        if props.instance_storage_reason is not None:
            self._record_instance_storage(props.instance_storage_reason)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=props.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=True,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")
            ],
        )
        # Written as CloudFormation JSON (the L1 struct would drop keys it is not given as its own types).
        self.endpoint.add_property_override(
            "DeploymentConfig", deployment_config(props.deployment, props.rollback_alarm_names)
        )
        for resource in self.conditional_resources:
            resource.cfn_options.condition = condition

    @property
    def conditional_resources(self) -> tuple[CfnResource, ...]:
        """What exists only once a version is approved."""
        return (self.model, self.endpoint_config, self.endpoint)

    def _record_instance_storage(self, reason: str) -> None:
        self.endpoint_config.add_metadata(
            VOLUME_ENCRYPTION_METADATA, {"mode": "instance-storage", "reason": reason}
        )
        acknowledge(
            self.endpoint_config,
            "Rookery::Rookery-H1",
            f"no volume KMS key: {reason}",
        )
        acknowledge(
            self.endpoint_config,
            "NIST.800.53.R5::NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured",
            f"no volume KMS key: {reason}",
        )
