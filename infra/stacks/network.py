"""``Rookery-<stage>-Network``: the private VPC, its endpoints and security groups (V1, V2, D2, E1, N7)."""

from __future__ import annotations

from aws_cdk import Environment
from constructs import Construct

from infra.constructs.network import PrivateNetwork
from infra.stacks.base import StageStack
from infra.stacks.stage_props import network_props
from stage import Stage


class NetworkStack(StageStack):
    """Wires ``PrivateNetwork``; stateful-ish (flow logs), so it is protected like the data in prod."""

    def __init__(
        self, scope: Construct, *, stage: Stage, env: Environment | None, image_accounts: tuple[str, ...] = ()
    ) -> None:
        """``image_accounts``: registries of external images the stage's pipeline uses (E1)."""
        super().__init__(
            scope,
            stage=stage,
            component="Network",
            env=env,
            description="private VPC without internet access, endpoints with policies",
        )
        self.network = PrivateNetwork(
            self,
            "Network",
            props=network_props(
                stage, account=self.account, region=self.region, image_accounts=image_accounts
            ),
        )
