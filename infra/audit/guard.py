"""AWS Control Tower's proactive controls (cfn-guard rules) in the audit, and where they cannot see.

``infra.app`` registers ``CfnGuardValidator`` (``cdklabs-cdk-validator-cfnguard``, which bundles the
Control Tower rules and the cfn-guard binaries for Linux and macOS, so it runs offline and without
Docker) beside cdk-nag. Its findings are acknowledged like cdk-nag's, as
``cdk-validator-cfnguard::<rule name>`` with a reason.

Several rules accept a property only as a literal or as a ``Ref``/``Fn::GetAtt`` to a resource of
the same template. rookery's stacks pass the VPC's subnets and the Data stack's keys across stacks
(``Fn::GetStackOutput``), which cfn-guard cannot resolve at synth time: the property is there,
but the rule reads it as missing. ``CROSS_STACK_RULES`` lists those rules, why each finding is a
false positive, and what proves the property instead; ``docs/controls.md`` prints the list.

Pure data (no CDK): the acknowledgment helpers in ``infra.audit.acknowledge`` and the catalogue's
renderer read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

GUARD_PACK: Final = "cdk-validator-cfnguard"
# The distribution that ships it (pinned in pyproject; the report prints its version).
GUARD_PLUGIN: Final = "cdklabs-cdk-validator-cfnguard"


@dataclass(frozen=True)
class CrossStackRule:
    """A guard rule that reads a cross-stack reference as a missing value."""

    rule: str  # the rule name, as the validation report and acknowledgments name it
    control_tower_id: str
    reads: str  # the property the rule wants as a literal or a same-template reference
    proof: str  # what proves the property in rookery instead

    @property
    def reason(self) -> str:
        return (
            f"false positive of {self.control_tower_id}: it accepts {self.reads} only as a literal or a "
            "reference to a resource of the same template, and here it is a cross-stack reference "
            f"(Fn::GetStackOutput) that cfn-guard cannot resolve at synth time; {self.proof}"
        )


CROSS_STACK_RULES: Final[Mapping[str, CrossStackRule]] = MappingProxyType(
    {
        r.rule: r
        for r in (
            CrossStackRule(
                "cloudwatch_log_group_encrypted_check",
                "CT.CLOUDWATCH.PR.3",
                "`KmsKeyId`",
                "the key is the Data stack's logs key (the tests assert its ARN on every log group)",
            ),
            CrossStackRule(
                "lambda_inside_vpc_check",
                "CT.LAMBDA.PR.3",
                "`VpcConfig.SubnetIds` and `SecurityGroupIds`",
                "they are the Network stack's isolated subnets and the Lambda security group (control "
                "L1; the tests assert them on every project function)",
            ),
            CrossStackRule(
                "sagemaker_notebook_no_direct_internet_access_check",
                "CT.SAGEMAKER.PR.1",
                "`SubnetId` (beside `DirectInternetAccess: Disabled`)",
                "the subnet is one of the Network stack's isolated subnets; rule Rookery-N1 checks "
                "DirectInternetAccess and SubnetId",
            ),
            CrossStackRule(
                "sagemaker_notebook_instance_inside_vpc_check",
                "CT.SAGEMAKER.PR.2",
                "`SubnetId`",
                "the subnet is one of the Network stack's isolated subnets; rule Rookery-N1 checks it",
            ),
        )
    }
)


def guard_id(rule: str) -> str:
    """The acknowledgment id of a guard finding: ``cdk-validator-cfnguard::<rule>``."""
    return f"{GUARD_PACK}::{rule}"
