"""``Rookery-<stage>-Network``: the private VPC, its endpoints and security groups (V1, V2, D2)."""

from __future__ import annotations

from aws_cdk import Aspects, Environment, Stack
from constructs import Construct

from infra.constructs.network import PrivateNetwork
from infra.constructs.removal import StatefulRemovalPolicy, stateful_removal_policy
from rookery.config import Stage


class NetworkStack(Stack):
    """Wires ``PrivateNetwork``; stateful-ish (flow logs), so it is protected like the data in prod."""

    def __init__(self, scope: Construct, *, stage: Stage, env: Environment | None) -> None:
        super().__init__(
            scope,
            stage.stack_name("Network"),
            env=env,
            termination_protection=stage.termination_protection,
            description=f"rookery {stage.name}: private VPC without internet access, endpoints with policies",
        )
        Aspects.of(self).add(StatefulRemovalPolicy(stateful_removal_policy(stage)))
        self.network = PrivateNetwork(self, "Network", stage=stage)
