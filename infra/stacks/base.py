"""What every rookery stack takes from its stage: name, environment, termination protection, removal."""

from __future__ import annotations

from aws_cdk import Aspects, Environment, Stack
from constructs import Construct

from infra.constructs.removal import StatefulRemovalPolicy, stateful_removal_policy
from infra.stacks.stage_props import stage_label
from stage import Stage


class StageStack(Stack):
    """``Rookery-<stage>-<component>``, protected and with stateful removal policies as the stage says."""

    def __init__(
        self, scope: Construct, *, stage: Stage, component: str, env: Environment | None, description: str
    ) -> None:
        super().__init__(
            scope,
            stage.stack_name(component),
            env=env,
            termination_protection=stage.termination_protection,
            description=f"{stage_label(stage)}: {description}",
        )
        Aspects.of(self).add(
            StatefulRemovalPolicy(stateful_removal_policy(destroy=stage.removal_destroys_data))
        )
