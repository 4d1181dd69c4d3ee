"""``Rookery-<stage>-Serving``: the approved model's endpoint, its alarms and autoscaling, and the private
API in front of it (H1-H5, A1).

The deployed model version is the stack's ``ApprovedModelPackageArn`` parameter, never looked up at
synth. Empty (the default), the stack holds no model, endpoint config, endpoint, alarms or scaling,
so ``cdk deploy --all`` works before any approval; the API, the model's role and security group
exist from the start. CloudFormation is the only writer of the endpoint: a new version reaches it by
a stack update of the parameter, which runs SageMaker's blue/green deployment with auto-rollback.
"""

from __future__ import annotations

import functools

import botocore.session
from aws_cdk import CfnCondition, CfnParameter, Environment, Fn
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.data_lake import TrustedPrincipal
from infra.constructs.endpoint import EndpointProps, ModelSecurityGroup, ServingEndpoint
from infra.constructs.endpoint_alarms import EndpointRollbackAlarms, RollbackAlarmsProps
from infra.constructs.endpoint_scaling import AutoscalingProps, EndpointAutoscaling
from infra.constructs.guardrails import SageMakerGuardrails
from infra.constructs.inference_api import InferenceApi, InferenceApiProps
from infra.constructs.network import PrivateNetwork
from infra.constructs.serving_role import ServingModelRole, ServingRoleProps
from infra.stacks.base import StageStack
from infra.stacks.data import DataStack
from infra.stacks.ml import MlStack
from pipelines.contract import INFERENCE_CONTENT_TYPES
from pipelines.settings import model_package_group_name
from stage import Stage
from stage.alarms import rollback_alarms
from stage.names import (
    API_STAGE_NAME,
    APPROVED_MODEL_PARAMETER,
    CAPTURE_PREFIX,
    VARIANT_NAME,
    api_name,
    bucket_name,
    capture_destination,
    endpoint_name,
    serving_role_path,
)
from stage.serving import has_instance_storage

CSV: str = "text/csv"


@functools.cache
def invoke_endpoint_payload_limit() -> int:
    """SageMaker's InvokeEndpoint body limit in bytes, as the service model botocore ships states it."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    return int(model.shape_for("BodyBlob").metadata["max"])


def model_package_pattern(stage: Stage) -> str:
    """Empty, or a versioned model package ARN of the stage's group.

    A stage pinned to an account names its account and region; an environment-agnostic stage can
    only require the shape (any 12-digit account, any region), since both are unknown at synth.
    """
    region, account = (stage.region, stage.account) if stage.account else ("[a-z0-9-]+", "[0-9]{12}")
    group = model_package_group_name(stage)
    return f"^$|^arn:aws[a-z-]*:sagemaker:{region}:{account}:model-package/{group}/[0-9]+$"


def capture_exception(stage: Stage) -> TrustedPrincipal:
    """D1b: SageMaker writes data capture from its own network on behalf of the endpoint's role."""
    return TrustedPrincipal(
        arn=Fn.sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{serving_role_path(stage)}*"),
        reason=(
            "the endpoint's model role (matched by its IAM path): SageMaker writes data-capture files "
            "from the SageMaker service network, on behalf of that role, so the requests never carry "
            "the project's aws:SourceVpce"
        ),
        buckets=("raw",),
        prefix=CAPTURE_PREFIX,
    )


class ServingStack(StageStack):
    """Depends on the Network, Data and ML stacks; nothing depends on it."""

    def __init__(
        self,
        scope: Construct,
        *,
        stage: Stage,
        env: Environment | None,
        network: PrivateNetwork,
        data: DataStack,
        ml: MlStack,
    ) -> None:
        super().__init__(
            scope,
            stage=stage,
            component="Serving",
            env=env,
            description="endpoint of the approved model version (blue/green, auto-rollback), private API",
        )
        # Not a template reference, an order: the endpoint serves versions of the ML stack's model
        # package group, which run the ML stack's project image.
        self.add_dependency(ml, "the model registry and the project image the endpoint serves")
        serving = stage.serving
        keys = data.keys
        name = endpoint_name(stage)
        buckets = {
            purpose: s3.Bucket.from_bucket_name(
                self,
                f"{purpose.capitalize()}Bucket",
                bucket_name(stage, purpose, account=self.account, region=self.region),
            )
            for purpose in ("raw", "artifacts")
        }

        self.approved_model = CfnParameter(
            self,
            APPROVED_MODEL_PARAMETER,
            type="String",
            default="",
            allowed_pattern=model_package_pattern(stage),
            constraint_description=(
                f"empty (no approved version yet) or a version ARN of the model package group "
                f"{model_package_group_name(stage)}, e.g. arn:aws:sagemaker:<region>:<account>:model-package/"
                f"{model_package_group_name(stage)}/3"
            ),
            description="the approved model package version the endpoint serves; empty: no endpoint",
        )
        self.has_approved_model = CfnCondition(
            self,
            "HasApprovedModel",
            expression=Fn.condition_not(Fn.condition_equals(self.approved_model.value_as_string, "")),
        )

        subnet_ids = network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnet_ids
        self.model_network = ModelSecurityGroup(
            self,
            "ModelNetwork",
            endpoint_name=name,
            vpc=network.vpc,
            endpoint_security_group=network.endpoint_security_group,
        )
        # The stage's SageMaker guardrails, as a boundary of this stack: the audit proves a boundary
        # from the template that holds the role (Rookery-I2), so it is not referenced from the ML stack.
        self.guardrails = SageMakerGuardrails(
            self,
            "Guardrails",
            stage=stage,
            subnet_ids=subnet_ids,
            security_group_ids=[self.model_network.security_group.security_group_id],
            kms_key_arns=[keys.artifacts.key_arn, keys.data.key_arn],
        )
        self.model_role = ServingModelRole(
            self,
            "ModelRole",
            props=ServingRoleProps(
                qualifier=stage.qualifier,
                path=serving_role_path(stage),
                endpoint_name=name,
                model_artifacts_prefix=f"{ml.pipeline.pipeline_name}/",
                capture_prefix=CAPTURE_PREFIX,
            ),
            artifacts_bucket=buckets["artifacts"],
            artifacts_key=keys.artifacts,
            raw_bucket=buckets["raw"],
            data_key=keys.data,
            image_repository=ml.image.repository,
            vpc=network.vpc,
            boundary=self.guardrails.policy,
        )
        alarms = rollback_alarms(stage)
        self.alarms = EndpointRollbackAlarms(
            self, "Alarms", props=RollbackAlarmsProps(alarms=alarms), condition=self.has_approved_model
        )
        storage = has_instance_storage(serving.instance_type)
        self.endpoint = ServingEndpoint(
            self,
            "Endpoint",
            props=EndpointProps(
                endpoint_name=name,
                variant_name=VARIANT_NAME,
                instance_type=serving.instance_type,
                initial_instance_count=serving.initial_instance_count,
                volume_kms_key_arn=None if storage else keys.artifacts.key_arn,
                instance_storage_reason=(
                    f"{serving.instance_type} keeps the model on local NVMe instance storage, which the "
                    "instance encrypts in hardware; SageMaker rejects a volume KMS key for it "
                    '(stage: serving.volume_encryption = "instance-storage")'
                    if storage
                    else None
                ),
                capture_destination=capture_destination(buckets["raw"].bucket_name),
                capture_kms_key_arn=keys.data.key_arn,
                capture_sampling_percent=serving.capture_sampling_percent,
                capture_csv_content_types=tuple(t for t in INFERENCE_CONTENT_TYPES if t == CSV),
                capture_json_content_types=tuple(t for t in INFERENCE_CONTENT_TYPES if t != CSV),
                deployment=serving.deployment,
                rollback_alarm_names=tuple(a.name for a in alarms),
            ),
            condition=self.has_approved_model,
            model_package=self.approved_model.value_as_string,
            role=self.model_role.role,
            subnet_ids=subnet_ids,
            security_group=self.model_network.security_group,
        )
        # SageMaker checks the rollback alarms exist when it creates or updates the endpoint.
        for alarm in self.alarms.alarms.values():
            self.endpoint.endpoint.node.add_dependency(alarm)
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            props=AutoscalingProps(
                endpoint_name=name,
                variant_name=VARIANT_NAME,
                min_instances=serving.min_instances,
                max_instances=serving.max_instances,
                invocations_per_instance=serving.invocations_per_instance,
                scale_in_cooldown_seconds=serving.scale_in_cooldown_seconds,
                scale_out_cooldown_seconds=serving.scale_out_cooldown_seconds,
            ),
            condition=self.has_approved_model,
            endpoint=self.endpoint.endpoint,
        )
        self.api = InferenceApi(
            self,
            "Api",
            props=InferenceApiProps(
                api_name=api_name(stage),
                stage_name=API_STAGE_NAME,
                endpoint_name=name,
                throttle_rate_per_second=serving.api.throttle_rate_per_second,
                throttle_burst=serving.api.throttle_burst,
                quota_per_day=serving.api.quota_per_day,
                max_payload_bytes=invoke_endpoint_payload_limit(),
                log_retention_days=stage.log_retention_days,
            ),
            vpc_endpoint=network.interface_endpoints["execute-api"],
            logs_key=keys.logs,
        )
