"""Control H4: target-tracking autoscaling of the endpoint's variant on invocations per instance.

The scalable target uses Application Auto Scaling's service-linked role for SageMaker (no role of
ours) and depends on the endpoint explicitly: the variant must exist before it can be registered.
Both exist only under ``condition``, like the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import CfnCondition, CfnResource
from aws_cdk import aws_applicationautoscaling as autoscaling
from constructs import Construct

from infra.constructs.props import PropsError

SCALABLE_DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"
METRIC: Final = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's id of a SageMaker variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


@dataclass(frozen=True, kw_only=True)
class AutoscalingProps:
    endpoint_name: str
    variant_name: str
    min_instances: int
    max_instances: int
    invocations_per_instance: int  # the target: invocations per instance per minute
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances:
            raise PropsError(
                self, "min_instances", f"must be at least 1 and at most max_instances ({self.max_instances})"
            )
        if self.invocations_per_instance < 1:
            raise PropsError(self, "invocations_per_instance", "the target must be at least 1 per minute")
        for cooldown in ("scale_in_cooldown_seconds", "scale_out_cooldown_seconds"):
            if getattr(self, cooldown) < 0:
                raise PropsError(self, cooldown, "a cooldown is 0 seconds or more")


class EndpointAutoscaling(Construct):
    """Exposes ``target`` and ``policy`` (L1)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: AutoscalingProps,
        condition: CfnCondition,
        endpoint: CfnResource,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = autoscaling.CfnScalableTarget(
            self,
            "Target",
            service_namespace="sagemaker",
            resource_id=resource_id(props.endpoint_name, props.variant_name),
            scalable_dimension=SCALABLE_DIMENSION,
            min_capacity=props.min_instances,
            max_capacity=props.max_instances,
        )
        self.target.node.add_dependency(endpoint)
        self.policy = autoscaling.CfnScalingPolicy(
            self,
            "Policy",
            policy_name=f"{props.endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=(
                autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                    target_value=props.invocations_per_instance,
                    predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                        predefined_metric_type=METRIC
                    ),
                    scale_in_cooldown=props.scale_in_cooldown_seconds,
                    scale_out_cooldown=props.scale_out_cooldown_seconds,
                )
            ),
        )
        for resource in (self.target, self.policy):
            resource.cfn_options.condition = condition
