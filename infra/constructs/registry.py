"""Control D7: the stage's model registry, a model package group that survives ``cdk destroy``.

Its name comes from ``stage.names.model_package_group_name`` (the pipeline registers into it,
the CLI and the serving stack read from it); the ML stack's removal-policy aspect retains it unless
the stage allows deletion and synth is given ``-c destroy_data=true``.
"""

from __future__ import annotations

from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stage import Stage
from stage.names import model_package_group_name


class ModelRegistry(Construct):
    """Exposes ``group`` (the CloudFormation resource), ``group_name`` and ``group_arn``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.group_name = model_package_group_name(stage)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=(
                f"{stage.qualifier}: model versions registered by the pipeline, PendingManualApproval "
                "until a reviewer approves them"
            ),
        )
        self.group_arn: str = self.group.attr_model_package_group_arn
