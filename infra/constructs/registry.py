"""Control D7: the stage's model registry, a model package group that survives ``cdk destroy``.

The pipeline registers into it, the CLI and the serving stack read from it; its name is
``stage.names.model_package_group_name(stage)``, which the stacks put into ``RegistryProps``.
Secure default: the group is retained on delete (the stacks' removal-policy aspect decides the same way,
from the stage and ``-c destroy_data=true``).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.props import PropsError, check_qualifier
from infra.constructs.removal import stateful_removal_policy
from pipelines.settings import MODEL_PACKAGE_GROUP_NAME


@dataclass(frozen=True, kw_only=True)
class RegistryProps:
    qualifier: str
    group_name: str  # the model package group the pipeline registers into
    destroy_on_delete: bool = False
    """Secure default: the group and its registered versions survive ``cdk destroy`` (RETAIN)."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        if not MODEL_PACKAGE_GROUP_NAME.match(self.group_name):
            raise PropsError(
                self,
                "group_name",
                "letters, digits and single hyphens (at most 63), e.g. 'rookery-dev-models'",
            )


class ModelRegistry(Construct):
    """Exposes ``group`` (the CloudFormation resource), ``group_name`` and ``group_arn``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: RegistryProps) -> None:
        super().__init__(scope, construct_id)
        self.group_name = props.group_name
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=self.group_name,
            model_package_group_description=(
                f"{props.qualifier}: model versions registered by the pipeline, PendingManualApproval "
                "until a reviewer approves them"
            ),
        )
        self.group.apply_removal_policy(stateful_removal_policy(destroy=props.destroy_on_delete))
        self.group_arn: str = self.group.attr_model_package_group_arn
