"""``Rookery-<stage>-ML``: the pipeline, its role and guardrails, the image, the registry, the notebook and
the trigger (I1, N1-N7, R1, T1-T6, D7 for the registry, L1 for the trigger)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Environment
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.guardrails import SageMakerGuardrails
from infra.constructs.image import ProjectImage
from infra.constructs.keys import PurposeKey
from infra.constructs.network import PrivateNetwork
from infra.constructs.notebook import ProjectNotebook
from infra.constructs.pipeline import DeployedResources, TrainingPipeline
from infra.constructs.registry import ModelRegistry
from infra.constructs.sagemaker_role import SageMakerExecutionRole
from infra.constructs.trigger import PipelineTrigger
from infra.stacks.base import StageStack
from infra.stacks.data import DataStack
from infra.stacks.stage_props import (
    execution_role_props,
    guardrails_props,
    notebook_props,
    pipeline_props,
    queue_key_props,
    registry_props,
    render_for_stage,
    trigger_props,
)
from stage import ConfigError, Stage
from stage.names import DATA_BUCKETS, bucket_name


class MlStack(StageStack):
    """Depends on the Network and Data stacks; nothing depends on it (the Data stack trusts the
    execution role by its IAM path, not by reference)."""

    def __init__(
        self,
        scope: Construct,
        *,
        stage: Stage,
        env: Environment | None,
        network: PrivateNetwork,
        data: DataStack,
        render_cache: Path,
    ) -> None:
        super().__init__(
            scope,
            stage=stage,
            component="ML",
            env=env,
            description="SageMaker pipeline, role, notebook, model registry, trigger",
        )
        keys = data.keys
        # By their config-derived names (as the Network stack's S3 endpoint policy names them), so
        # policies here read as ARNs and the stack needs no cross-stack reference for them.
        buckets = {
            purpose: s3.Bucket.from_bucket_name(
                self,
                f"{purpose.capitalize()}Bucket",
                bucket_name(stage, purpose, account=self.account, region=self.region),
            )
            for purpose in DATA_BUCKETS
        }
        subnets = network.vpc.select_subnets(subnet_type=network.subnets.subnet_type).subnets
        sagemaker_group = network.workload_security_groups["sagemaker"]
        notebook_group = network.workload_security_groups["notebook"]
        rendered = render_for_stage(stage, cache_dir=render_cache)
        if len(subnets) != len(rendered.placeholders.subnet_ids):
            raise ConfigError(
                f"stage {stage.name!r}: the VPC has {len(subnets)} workload subnets but the pipeline was "
                f"rendered for {len(rendered.placeholders.subnet_ids)} (max_azs); keep max_azs equal to the "
                "Availability Zones the stage's account offers"
            )

        self.image = ProjectImage(self, "ProjectImage")
        self.guardrails = SageMakerGuardrails(
            self,
            "Guardrails",
            props=guardrails_props(stage),
            subnets=subnets,
            security_groups=[sagemaker_group],
            keys=[keys.artifacts, keys.data],
            notebook_security_groups=[notebook_group],
        )
        self.registry = ModelRegistry(self, "Registry", props=registry_props(stage))
        self.execution = SageMakerExecutionRole(
            self,
            "Execution",
            props=execution_role_props(stage, rendered),
            raw_bucket=buckets["raw"],
            artifacts_bucket=buckets["artifacts"],
            data_key=keys.data,
            artifacts_key=keys.artifacts,
            image_repository=self.image.repository,
            vpc=network.vpc,
            boundary=self.guardrails.policy,
        )
        self.pipeline = TrainingPipeline(
            self,
            "Pipeline",
            props=pipeline_props(stage, rendered),
            resources=DeployedResources(
                role_arn=self.execution.role.role_arn,
                artifacts_bucket=buckets["artifacts"].bucket_name,
                raw_bucket=buckets["raw"].bucket_name,
                image_uri=self.image.image_uri,
                subnet_ids=tuple(s.subnet_id for s in subnets),
                security_group_ids=(sagemaker_group.security_group_id,),
                # Job volumes and outputs (models, evaluations) are artifacts: the artifacts key.
                volume_kms_key_arn=keys.artifacts.key_arn,
                output_kms_key_arn=keys.artifacts.key_arn,
                model_package_group_name=self.registry.group_name,
                pipeline_name=rendered.placeholders.pipeline_name,
            ),
            role=self.execution.role,
            registry=self.registry,
        )
        self.queue_key = PurposeKey(self, "QueueKey", props=queue_key_props(stage)).key
        self.trigger = PipelineTrigger(
            self,
            "Trigger",
            props=trigger_props(
                stage, pipeline_name=self.pipeline.pipeline_name, pipeline_arn=self.pipeline.pipeline_arn
            ),
            raw_bucket=buckets["raw"],
            vpc=network.vpc,
            subnets=network.subnets,
            security_group=network.workload_security_groups["lambda"],
            logs_key=keys.logs,
            queue_key=self.queue_key,
        )
        self.notebook: ProjectNotebook | None = None
        if stage.notebook.enabled:
            self.notebook = ProjectNotebook(
                self,
                "Notebook",
                props=notebook_props(
                    stage,
                    pipeline_name=self.pipeline.pipeline_name,
                    endpoint_ids={n: e.vpc_endpoint_id for n, e in network.interface_endpoints.items()},
                ),
                subnet=subnets[0],
                security_group=notebook_group,
                raw_bucket=buckets["raw"],
                curated_bucket=buckets["curated"],
                artifacts_bucket=buckets["artifacts"],
                data_key=keys.data,
                artifacts_key=keys.artifacts,
                boundary=self.guardrails.policy,
            )
