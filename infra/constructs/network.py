"""Controls V1, V2 and D2: a private VPC with no route to the internet, reached only through endpoints.

- Isolated subnets only (no internet gateway, no NAT), default security group stripped of rules,
  flow logs of all traffic to a KMS-encrypted log group with retention.
- One security group per kind of workload; interface endpoints accept 443 only from them. Only the
  jobs' group admits itself (TCP between the instances of a distributed job); the notebook's group
  (N7) has egress to the endpoints and S3 alone.
- Every endpoint carries a policy: interface endpoints admit only principals of the project
  account on the resources ``infra.endpoint_policies`` lists; the S3 gateway admits the project
  buckets (``NetworkProps.project_bucket_names``) and the AWS-owned buckets listed there, with reasons.
- E1: the ECR endpoints admit repositories of the project account, plus the registries of
  ``NetworkProps.image_accounts`` (external images the stage explicitly allows), nothing else.

None of these is optional. ``NetworkProps`` decides only the address block, the number of AZs, which
interface endpoints exist (by default only the essential ones), log retention and the key's deletion window.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from aws_cdk import Aws, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.audit.acknowledge import acknowledge_guard, acknowledge_inline_policy
from infra.constructs.keys import MAX_PENDING_WINDOW_DAYS, KeyProps, PurposeKey, check_pending_window
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.props import PropsError, check_qualifier, check_retention
from infra.endpoint_policies import (
    AWS_OWNED_BUCKETS,
    ECR_ENDPOINTS,
    INTERFACE_ENDPOINT_ACCESS,
    PROJECT_BUCKET_ACTIONS,
    EndpointAccess,
    check_known,
    external_registry,
)
from stage.model import ESSENTIAL_ENDPOINTS

# Subnets are /24: room for SageMaker job, endpoint and Lambda ENIs plus one ENI per interface endpoint.
SUBNET_MASK: Final = 24
HTTPS: Final = 443
# The custom-resource provider CDK adds for ``restrict_default_security_group``.
_RESTRICT_DEFAULT_SG_PROVIDER: Final = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
# An environment-agnostic stack sees this many Availability Zones (CDK cannot look them up offline).
AGNOSTIC_AZS: Final = 2

# Kinds of workload in the VPC, each with its own security group (an interface: the ML and
# Serving stacks attach their jobs, notebook, endpoints and Lambdas to these).
WORKLOADS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sagemaker": "SageMaker pipeline jobs",
        "lambda": "project Lambda functions",
        # N7: a group of its own: code run in the notebook reaches the endpoints and S3, never a job
        # instance or an endpoint (nothing admits it), and no job reaches the notebook.
        "notebook": "SageMaker notebook instance",
    }
)

_SERVICES: Final[Mapping[str, ec2.InterfaceVpcEndpointAwsService]] = MappingProxyType(
    {
        "sagemaker.api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
        "sagemaker.runtime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
        "notebook": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_NOTEBOOK,
        "sts": ec2.InterfaceVpcEndpointAwsService.STS,
        "logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
        "monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
        "kms": ec2.InterfaceVpcEndpointAwsService.KMS,
        "ecr.api": ec2.InterfaceVpcEndpointAwsService.ECR,
        "ecr.dkr": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
        "glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
        "kinesis-firehose": ec2.InterfaceVpcEndpointAwsService.KINESIS_FIREHOSE,
        "athena": ec2.InterfaceVpcEndpointAwsService.ATHENA,
        "sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
        "events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
        "ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
        "execute-api": ec2.InterfaceVpcEndpointAwsService.APIGATEWAY,
        "cloudformation": ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION,
    }
)


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    """The stage's network; validated before CDK would fail with something less helpful."""

    qualifier: str
    vpc_cidr: str  # a private IPv4 block, e.g. "10.20.0.0/16"; one /24 workload subnet per AZ
    project_bucket_names: tuple[str, ...]
    """The only project buckets the S3 gateway endpoint admits (names may hold the stack's account and
    region tokens). There is no allow-all default: a bucket not named here is unreachable from the VPC."""
    max_azs: int = AGNOSTIC_AZS
    interface_endpoints: tuple[str, ...] = ESSENTIAL_ENDPOINTS
    """Secure default: only the endpoints without which jobs in a VPC without NAT cannot start (image
    pull, credentials, logs, keys, SageMaker). Each one added is another service reachable from the VPC."""
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of flow logs."""
    key_pending_window_days: int = MAX_PENDING_WINDOW_DAYS
    """Deletion window of the flow-logs key; see ``KeyProps.pending_window_days``."""
    image_accounts: tuple[str, ...] = ()
    """Secure default: the ECR endpoints admit the project account's repositories only (E1). Accounts
    (12 digits) whose registries hold an external image the stage explicitly allows."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        try:
            prefix = ipaddress.IPv4Network(self.vpc_cidr, strict=True).prefixlen
        except ValueError as error:
            raise PropsError(self, "vpc_cidr", f"{error}; use a block like '10.20.0.0/16'") from None
        if self.max_azs < 1:
            raise PropsError(self, "max_azs", "needs at least 1 Availability Zone (rookery uses 2 or more)")
        room = 2 ** (SUBNET_MASK - prefix) if prefix <= SUBNET_MASK else 0
        if self.max_azs > room:
            raise PropsError(
                self,
                "max_azs",
                f"vpc_cidr = {self.vpc_cidr!r} holds {room} /{SUBNET_MASK} subnets but max_azs = "
                f"{self.max_azs}; use a larger block (e.g. a /16) or fewer AZs",
            )
        if not self.project_bucket_names:
            raise PropsError(
                self, "project_bucket_names", "name the project's buckets the VPC's workloads may reach"
            )
        missing = [e for e in ESSENTIAL_ENDPOINTS if e not in self.interface_endpoints]
        if missing:
            raise PropsError(
                self,
                "interface_endpoints",
                f"lacks {missing}: jobs in a VPC without NAT cannot pull images, get credentials, log or use "
                "keys without them; add them back",
            )
        if len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            raise PropsError(self, "interface_endpoints", "an endpoint is listed twice; list each once")
        try:
            check_known(self.interface_endpoints)
        except ValueError as error:
            raise PropsError(
                self, "interface_endpoints", f"{error}; choose from {sorted(INTERFACE_ENDPOINT_ACCESS)}"
            ) from None
        check_retention(self)
        check_pending_window(self, "key_pending_window_days")
        for account in self.image_accounts:
            try:
                external_registry(account)
            except ValueError as error:
                raise PropsError(self, "image_accounts", f"{error}; e.g. ('123456789012',)") from None


@dataclass(frozen=True)
class _Arn:
    """Fill ``{partition}``, ``{region}``, ``{account}`` with the stack's (possibly token) values."""

    partition: str
    region: str
    account: str

    def __call__(self, template: str) -> str:
        return template.format(partition=self.partition, region=self.region, account=self.account)


class PrivateNetwork(Construct):
    """The stage's VPC, its endpoints with policies, workload security groups and flow logs.

    Exposes ``vpc``, ``subnets`` (the isolated workload subnets), ``workload_security_groups``
    (by ``WORKLOADS`` name), ``endpoint_security_group``, ``interface_endpoints`` (by config
    name), ``s3_endpoint`` and ``flow_log_group``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: NetworkProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        agnostic = Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region)
        if agnostic and props.max_azs > AGNOSTIC_AZS:
            raise PropsError(
                props,
                "max_azs",
                f"max_azs = {props.max_azs} needs a known environment (an environment-agnostic stack sees "
                f"only {AGNOSTIC_AZS} AZs); give the stack an account and region (the stage's 'account') "
                f"or use max_azs = {AGNOSTIC_AZS}",
            )
        arn = _Arn(partition=Aws.PARTITION, region=stack.region, account=stack.account)

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(props.vpc_cidr),
            max_azs=props.max_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="workload", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_MASK
                )
            ],
            # Isolated subnets need no gateway; CDK must not add one for any reason.
            create_internet_gateway=False,
            enable_dns_hostnames=True,  # private DNS names of the interface endpoints
            enable_dns_support=True,
            restrict_default_security_group=True,
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        self.flow_logs_key = PurposeKey(
            self,
            "FlowLogsKey",
            props=KeyProps(
                qualifier=props.qualifier,
                purpose="flow-logs",
                description="VPC flow logs",
                for_cloudwatch_logs=True,
                pending_window_days=props.key_pending_window_days,
            ),
        ).key
        self.flow_log_group = encrypted_log_group(
            self, "FlowLogGroup", key=self.flow_logs_key, days=props.log_retention_days
        )
        flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge_inline_policy(
            flow_log.node.find_child("IAMRole"),
            "the flow-log delivery role's policy is generated by CDK for this role alone: create streams in "
            "and write to the one flow-log group, nothing else",
        )

        acknowledge_guard(
            stack.node.find_child(_RESTRICT_DEFAULT_SG_PROVIDER),
            "lambda_inside_vpc_check",
            "CDK's provider that strips the default security group's rules runs once per deployment and "
            "calls only EC2's API, from Lambda's network; no workload or data is reachable from it",
        )

        self.workload_security_groups: Mapping[str, ec2.SecurityGroup] = MappingProxyType(
            {
                name: ec2.SecurityGroup(
                    self,
                    f"{name.capitalize()}SecurityGroup",
                    vpc=self.vpc,
                    description=f"{props.qualifier} {purpose}",
                    allow_all_outbound=False,
                )
                for name, purpose in WORKLOADS.items()
            }
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description=f"{props.qualifier} interface endpoints: HTTPS from workload security groups only",
            allow_all_outbound=False,
        )

        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
        )
        for statement in _s3_gateway_statements(props.project_bucket_names, arn):
            self.s3_endpoint.add_to_policy(statement)
        _record_reasons(
            self.s3_endpoint,
            [(PROJECT_BUCKET_ACTIONS, "the project's buckets, named from config, in the project account")]
            + [(b.actions, f"{b.name}: {b.reason}") for b in AWS_OWNED_BUCKETS],
        )
        # S3's managed prefix list id differs per region and cannot be resolved offline for an
        # environment-agnostic stage; 443 to any address is safe because the route tables hold no
        # route out of the VPC except the S3 gateway endpoint's prefix list.
        s3_via_gateway = ec2.Peer.any_ipv4()

        for name, group in self.workload_security_groups.items():
            self.endpoint_security_group.add_ingress_rule(
                group, ec2.Port.tcp(HTTPS), f"HTTPS from {name} workloads to the interface endpoints"
            )
            group.add_egress_rule(
                self.endpoint_security_group, ec2.Port.tcp(HTTPS), "HTTPS to the interface endpoints"
            )
            group.add_egress_rule(
                s3_via_gateway,
                ec2.Port.tcp(HTTPS),
                "HTTPS to S3 via the gateway endpoint (the only route out)",
            )

        # Multi-instance SageMaker training and processing jobs talk TCP between their own
        # instances; nothing else reaches them. (EFA would need all protocols; no rookery job uses it.)
        sagemaker = self.workload_security_groups["sagemaker"]
        sagemaker.add_ingress_rule(
            sagemaker, ec2.Port.all_tcp(), "TCP between instances of one distributed job"
        )
        sagemaker.add_egress_rule(
            sagemaker, ec2.Port.all_tcp(), "TCP between instances of one distributed job"
        )

        self.interface_endpoints: Mapping[str, ec2.InterfaceVpcEndpoint] = MappingProxyType(
            {
                name: self._interface_endpoint(
                    name,
                    arn,
                    extra=tuple(external_registry(a) for a in props.image_accounts)
                    if name in ECR_ENDPOINTS
                    else (),
                )
                for name in props.interface_endpoints
            }
        )

    def _interface_endpoint(
        self, name: str, arn: _Arn, *, extra: tuple[EndpointAccess, ...]
    ) -> ec2.InterfaceVpcEndpoint:
        endpoint = self.vpc.add_interface_endpoint(
            _construct_id(name),
            service=_SERVICES[name],
            subnets=self.subnets,
            security_groups=[self.endpoint_security_group],
            open=False,  # ingress comes only from the rules above
            private_dns_enabled=True,
        )
        accesses = (*INTERFACE_ENDPOINT_ACCESS[name], *extra)
        for access in accesses:
            endpoint.add_to_policy(_statement(access, arn))
        _record_reasons(endpoint, [(a.actions, a.reason) for a in accesses])
        return endpoint


POLICY_REASONS_METADATA: Final = "rookery:policy-reasons"


def _record_reasons(endpoint: ec2.IVpcEndpoint, reasons: list[tuple[tuple[str, ...], str]]) -> None:
    """Write why each statement exists into the template, where the audit report reads it."""
    cfn = endpoint.node.default_child
    assert isinstance(cfn, ec2.CfnVPCEndpoint)
    cfn.add_metadata(POLICY_REASONS_METADATA, [{"actions": list(a), "reason": r} for a, r in reasons])


def _construct_id(endpoint: str) -> str:
    return "".join(part.capitalize() for part in endpoint.replace("-", ".").split(".")) + "Endpoint"


def _statement(access: EndpointAccess, arn: _Arn) -> iam.PolicyStatement:
    conditions = (
        {"StringEquals": {"aws:PrincipalAccount": arn.account}} if access.principal_in_account else None
    )
    return iam.PolicyStatement(
        principals=[iam.AnyPrincipal()],
        actions=list(access.actions),
        resources=[arn(r) for r in access.resources],
        conditions=conditions,
    )


def _s3_gateway_statements(buckets: tuple[str, ...], arn: _Arn) -> list[iam.PolicyStatement]:
    project = iam.PolicyStatement(
        sid="ProjectBuckets",
        principals=[iam.AnyPrincipal()],
        actions=list(PROJECT_BUCKET_ACTIONS),
        resources=[
            r for b in buckets for r in (f"arn:{arn.partition}:s3:::{b}", f"arn:{arn.partition}:s3:::{b}/*")
        ],
        # Names are global: the account condition stops a look-alike bucket in another account.
        conditions={
            "StringEquals": {"aws:PrincipalAccount": arn.account, "aws:ResourceAccount": arn.account}
        },
    )
    owned = [
        iam.PolicyStatement(
            sid=f"AwsOwned{i}",
            principals=[iam.AnyPrincipal()],
            actions=list(bucket.actions),
            resources=[f"arn:{arn.partition}:s3:::{arn(bucket.name)}/*"],
        )
        for i, bucket in enumerate(AWS_OWNED_BUCKETS, start=1)
    ]
    return [project, *owned]
