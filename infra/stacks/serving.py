"""``Rookery-<stage>-Serving``: the approved model's endpoint, its alarms and autoscaling, and the private
API in front of it (H1-H5, A1).

The deployed model version is the stack's ``ApprovedModelPackageArn`` parameter, never looked up at
synth. Empty (the default), the stack holds no model, endpoint config, endpoint, alarms or scaling,
so ``cdk deploy --all`` works before any approval; the API, the model's role, boundary and security
group, and the deployer exist from the start. CloudFormation is the only writer of the endpoint: a
new version reaches it by a stack update of the parameter, which runs SageMaker's blue/green
deployment with auto-rollback.

The deployer (``infra.constructs.deployer``) makes that update when a version of the stage's group
is approved or rejected: ``UpdateStack`` on this stack with the previous template, the new parameter
value and every other parameter's previous value, through its CloudFormation service role.

A later ``cdk deploy`` keeps the deployed version: the CDK CLI sends ``UsePreviousValue`` for every
parameter of the deployed stack that the command line does not set (``--previous-parameters``,
on by default), so a template change never resets the parameter to its empty default. Never pass
``--parameters ApprovedModelPackageArn=...`` or ``--no-previous-parameters`` to deploy this stack:
approve a version in the registry instead. ``cdk deploy`` runs with the CDK bootstrap's execution
role (it passes it explicitly), not with the deployer's role.
"""

from __future__ import annotations

from aws_cdk import CfnCondition, CfnParameter, Environment, Fn
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.deployer import ModelDeployer
from infra.constructs.endpoint import ModelSecurityGroup, ServingEndpoint
from infra.constructs.endpoint_alarms import EndpointRollbackAlarms
from infra.constructs.endpoint_scaling import EndpointAutoscaling
from infra.constructs.guardrails import SageMakerGuardrails
from infra.constructs.inference_api import InferenceApi
from infra.constructs.keys import PurposeKey
from infra.constructs.monitoring import EndpointMonitoring
from infra.constructs.network import PrivateNetwork
from infra.constructs.serving_role import ServingModelRole
from infra.stacks.base import StageStack
from infra.stacks.data import DataStack
from infra.stacks.ml import MlStack
from infra.stacks.stage_props import (
    autoscaling_props,
    deployer_props,
    deployer_queue_key_props,
    endpoint_props,
    guardrails_props,
    inference_api_props,
    model_security_group_props,
    monitoring_props,
    rollback_alarms_props,
    serving_role_props,
)
from stage import Stage
from stage.names import (
    APPROVED_MODEL_PARAMETER,
    MONITORING_BASELINE_PARAMETER,
    bucket_name,
    model_package_group_name,
)


def model_package_pattern(stage: Stage) -> str:
    """Empty, or a versioned model package ARN of the stage's group.

    A stage pinned to an account names its account and region; an environment-agnostic stage can
    only require the shape (any 12-digit account, any region), since both are unknown at synth.
    """
    region, account = (stage.region, stage.account) if stage.account else ("[a-z0-9-]+", "[0-9]{12}")
    group = model_package_group_name(stage)
    return f"^$|^arn:aws[a-z-]*:sagemaker:{region}:{account}:model-package/{group}/[0-9]+$"


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
        self.add_stack_dependency(ml, "the model registry and the project image the endpoint serves")
        keys = data.keys
        # By their config-derived names, as the ML stack reads them: no reference into the Data stack.
        buckets = {
            purpose: s3.Bucket.from_bucket_name(
                self,
                f"{purpose.capitalize()}Bucket",
                bucket_name(stage, purpose, account=self.account, region=self.region),
            )
            for purpose in ("raw", "artifacts")
        }
        group = model_package_group_name(stage)
        self.approved_model = CfnParameter(
            self,
            APPROVED_MODEL_PARAMETER,
            type="String",
            default="",
            allowed_pattern=model_package_pattern(stage),
            constraint_description=(
                f"empty (no approved version yet) or a version ARN of the model package group {group}, "
                f"e.g. arn:aws:sagemaker:<region>:<account>:model-package/{group}/3"
            ),
            description="the approved model package version the endpoint serves; empty: no endpoint",
        )
        self.has_approved_model = CfnCondition(
            self,
            "HasApprovedModel",
            expression=Fn.condition_not(Fn.condition_equals(self.approved_model.value_as_string, "")),
        )

        subnets = network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnets
        self.model_network = ModelSecurityGroup(
            self,
            "ModelNetwork",
            props=model_security_group_props(stage),
            vpc=network.vpc,
            endpoint_security_group=network.endpoint_security_group,
        )
        # The stage's SageMaker guardrails, as a boundary of this stack: the audit proves a boundary
        # from the template that holds the role (Rookery-I2), so it is not referenced from the ML stack.
        self.guardrails = SageMakerGuardrails(
            self,
            "Guardrails",
            props=guardrails_props(stage),
            subnets=subnets,
            security_groups=[self.model_network.security_group],
            keys=[keys.artifacts, keys.data],
        )
        self.model_role = ServingModelRole(
            self,
            "ModelRole",
            props=serving_role_props(stage, pipeline_name=ml.pipeline.pipeline_name),
            artifacts_bucket=buckets["artifacts"],
            artifacts_key=keys.artifacts,
            raw_bucket=buckets["raw"],
            data_key=keys.data,
            image_repository=ml.image.repository,
            vpc=network.vpc,
            boundary=self.guardrails.policy,
        )
        self.alarms = EndpointRollbackAlarms(
            self, "Alarms", props=rollback_alarms_props(stage), condition=self.has_approved_model
        )
        endpoint = endpoint_props(stage, model_package=self.approved_model.value_as_string)
        self.endpoint = ServingEndpoint(
            self,
            "Endpoint",
            props=endpoint,
            condition=self.has_approved_model,
            role=self.model_role.role,
            subnets=subnets,
            security_group=self.model_network.security_group,
            volume_key=keys.artifacts if endpoint.volume_key_required else None,
            capture_bucket=buckets["raw"],
            capture_key=keys.data,
        )
        # SageMaker checks the rollback alarms exist when it creates or updates the endpoint.
        for alarm in self.alarms.alarms.values():
            self.endpoint.endpoint.node.add_dependency(alarm)
        self.autoscaling = EndpointAutoscaling(
            self,
            "Autoscaling",
            props=autoscaling_props(stage),
            condition=self.has_approved_model,
            endpoint=self.endpoint.endpoint,
        )
        self.monitoring_baseline = CfnParameter(
            self,
            MONITORING_BASELINE_PARAMETER,
            type="String",
            default="",
            allowed_pattern=r"^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+[^/]$",
            description="the live version's monitoring baseline (its Baseline step output); empty: none",
        )
        self.has_monitoring = CfnCondition(
            self,
            "HasMonitoringBaseline",
            expression=Fn.condition_and(
                Fn.condition_not(Fn.condition_equals(self.approved_model.value_as_string, "")),
                Fn.condition_not(Fn.condition_equals(self.monitoring_baseline.value_as_string, "")),
            ),
        )
        if stage.monitoring.enabled:
            self.monitoring = EndpointMonitoring(
                self,
                "Monitoring",
                props=monitoring_props(stage, pipeline_name=ml.pipeline.pipeline_name),
                condition=self.has_monitoring,
                baseline_uri=self.monitoring_baseline.value_as_string,
                image_uri=ml.image.image_uri,
                raw_bucket=buckets["raw"],
                artifacts_bucket=buckets["artifacts"],
                data_key=keys.data,
                artifacts_key=keys.artifacts,
                image_repository=ml.image.repository,
                vpc=network.vpc,
                subnets=subnets,
                security_group=self.model_network.security_group,
                boundary=self.guardrails.policy,
            )
            for schedule in self.monitoring.schedules.values():
                schedule.node.add_dependency(self.endpoint.endpoint)
        self.api = InferenceApi(
            self,
            "Api",
            props=inference_api_props(stage),
            vpc_endpoint=network.interface_endpoints["execute-api"],
            logs_key=keys.logs,
        )
        self.deployer_queue_key = PurposeKey(
            self, "DeployerQueueKey", props=deployer_queue_key_props(stage)
        ).key
        self.deployer = ModelDeployer(
            self,
            "Deployer",
            props=deployer_props(stage),
            model_parameter=self.approved_model,
            baseline_parameter=self.monitoring_baseline,
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_groups["lambda"],
            logs_key=keys.logs,
            queue_key=self.deployer_queue_key,
            volume_key=keys.artifacts if endpoint.volume_key_required else None,
        )
