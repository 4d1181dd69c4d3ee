"""Control D7: stateful resources survive ``cdk destroy`` unless deletion is explicitly allowed.

One aspect applies the policy to every stateful resource type, so no construct can forget it. A
stack decides ``destroy`` from its stage (``removal_policy = "destroy"`` and ``-c destroy_data=true``).
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, RemovalPolicy
from constructs import IConstruct

from infra.stateful import STATEFUL_RESOURCE_TYPES


def stateful_removal_policy(*, destroy: bool) -> RemovalPolicy:
    """DESTROY only when deletion is explicitly allowed; RETAIN otherwise."""
    return RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN


@jsii.implements(IAspect)
class StatefulRemovalPolicy:
    """Set the deletion and update-replace policy of every stateful resource under a scope."""

    def __init__(self, policy: RemovalPolicy) -> None:
        self._policy = policy

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, CfnResource) and node.cfn_resource_type in STATEFUL_RESOURCE_TYPES:
            node.apply_removal_policy(self._policy)
