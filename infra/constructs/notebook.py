"""Controls N1-N7: the stage's notebook instance, its role, its idle auto-stop, and who may open it.

- N1-N5: in a private subnet behind a security group of its own (N7: not the jobs'), no direct
  internet access, no root access, its volume encrypted with the data key, IMDSv2 only, a supported
  Amazon Linux 2023 platform, and a lifecycle configuration that stops it after
  ``NotebookProps.idle_minutes`` without activity (``notebook_autostop.py``: standard library
  only, Jupyter on localhost, the AWS CLI through the ``sagemaker.api`` endpoint; nothing is
  installed or downloaded).
- Its own role (under the stage's guardrails boundary): read the dataset prefix of the raw
  bucket, the curated bucket and the pipeline's artifacts, write under ``notebooks/`` of the
  artifacts bucket, decrypt with the data and artifacts keys, write its own logs, stop itself.
- N6: ``open_policy`` allows ``CreatePresignedNotebookInstanceUrl`` (and describe/start/stop)
  on this notebook's ARN only, and only for requests through the VPC endpoints or from the address
  ranges ``NotebookProps`` names (``aws:SourceVpce``, ``aws:SourceIp``); it is attached to the roles
  named in ``NotebookProps.access_role_names``. The condition matters because the URL is served from
  SageMaker's public notebook domain: SageMaker evaluates the policy again for every HTTP request
  and WebSocket frame of the session, so a URL opened from another network is refused.

Subnet, security group, keys, buckets and the boundary are required arguments; internet access,
root access and the IMDS version are not options.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.audit.acknowledge import acknowledge_cross_stack, acknowledge_inline_policy
from infra.constructs.policies import Grant, attach
from infra.constructs.props import PropsError, check_prefix, check_qualifier, check_role_path

AUTOSTOP_SCRIPT: Final = Path(__file__).with_name("notebook_autostop.py")
NOTEBOOK_PREFIX: Final = "notebooks/"
# SageMaker's limit on one lifecycle script (base64 characters).
MAX_LIFECYCLE_SCRIPT: Final = 16384
# Actions the open policy grants on the one notebook (N6).
OPEN_ACTIONS: Final = (
    "sagemaker:CreatePresignedNotebookInstanceUrl",
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:StartNotebookInstance",
    "sagemaker:StopNotebookInstance",
)
# CreateNotebookInstance's NotebookInstanceName; the pattern of IAM role names (RoleName).
_NOTEBOOK_NAME: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE_NAME: Final = re.compile(r"^[\w+=,.@-]{1,64}$")


def on_start_script(idle_minutes: int, script: str | None = None) -> str:
    """The lifecycle configuration's OnStart script: install the auto-stopper and start it in the background.

    It runs as root at every start. ``ROOKERY_HOME`` and ``ROOKERY_PYTHON`` exist for tests only.
    """
    source = AUTOSTOP_SCRIPT.read_text(encoding="utf-8") if script is None else script
    payload = base64.b64encode(source.encode("utf-8")).decode("ascii")
    return f"""#!/bin/bash
# rookery: stop this notebook after {idle_minutes} idle minutes (control N5). Works without internet:
# the stopper uses only the platform's Python, Jupyter on localhost and the AWS CLI through the
# VPC's sagemaker.api endpoint.
set -euo pipefail
home="${{ROOKERY_HOME:-/home/ec2-user/.rookery}}"
python="${{ROOKERY_PYTHON:-/usr/bin/python3}}"
mkdir -p "$home"
echo '{payload}' | base64 --decode > "$home/autostop.py"
aws_cli="$(command -v aws || echo /home/ec2-user/anaconda3/envs/JupyterSystemEnv/bin/aws)"
nohup "$python" "$home/autostop.py" --idle-minutes {idle_minutes} --aws-cli "$aws_cli" \\
  >> "$home/autostop.log" 2>&1 < /dev/null &
"""


@dataclass(frozen=True, kw_only=True)
class NotebookProps:
    qualifier: str
    name: str  # the instance name: people open it by name (CreatePresignedNotebookInstanceUrl)
    role_path: str  # the notebook role's own IAM path
    data_prefix: str  # the dataset's prefix of the raw bucket, readable from the notebook
    pipeline_name: str  # the pipeline's prefix of the artifacts bucket is readable
    instance_type: str
    volume_size_gb: int
    platform_identifier: str = "notebook-al2023-v1"
    """Secure default: Amazon Linux 2023 (SageMaker deprecated the Amazon Linux 1 and 2 platforms)."""
    idle_minutes: int = 60
    """Secure default: the instance stops itself after an hour without a busy kernel or activity."""
    access_role_names: tuple[str, ...] = ()
    """Secure default: no role may open Jupyter; the open policy (N6) is created attached to nothing.
    Names (not ARNs) of this account's roles that receive it."""
    source_vpc_endpoint_ids: tuple[str, ...] = ()
    """VPC endpoints (ids, may be tokens) through which Jupyter may be opened (``aws:SourceVpce``)."""
    source_cidrs: tuple[str, ...] = ()
    """Address ranges from which Jupyter may be opened (``aws:SourceIp``). No default for either:
    one of them must say where people open the notebook from."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        if not _NOTEBOOK_NAME.match(self.name):
            raise PropsError(
                self, "name", "letters, digits and single hyphens (at most 63), e.g. 'rookery-dev-notebook'"
            )
        check_role_path(self)
        check_prefix(self, "data_prefix")
        if not self.pipeline_name:
            raise PropsError(self, "pipeline_name", "name the pipeline whose artifacts the notebook reads")
        if self.idle_minutes < 1:
            raise PropsError(self, "idle_minutes", "the auto-stop needs at least 1 idle minute; e.g. 60")
        content = base64.b64encode(on_start_script(self.idle_minutes).encode("utf-8"))
        if len(content) > MAX_LIFECYCLE_SCRIPT:
            raise PropsError(
                self,
                "idle_minutes",
                f"the OnStart script is {len(content)} base64 characters; SageMaker allows "
                f"{MAX_LIFECYCLE_SCRIPT}: shorten {AUTOSTOP_SCRIPT.name}",
            )
        if not self.source_vpc_endpoint_ids and not self.source_cidrs:
            raise PropsError(
                self,
                "source_vpc_endpoint_ids",
                "name the VPC endpoints or (source_cidrs) the address ranges Jupyter may be opened from: "
                "without a source condition the presigned URL opens from any network (N6)",
            )
        for cidr in self.source_cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError as error:
                raise PropsError(self, "source_cidrs", f"{error}; e.g. ('203.0.113.0/24',)") from None
            if network.prefixlen == 0:
                raise PropsError(self, "source_cidrs", f"{cidr} is every address; name the corporate ranges")
        bad = [r for r in self.access_role_names if not _ROLE_NAME.match(r)]
        if bad:
            raise PropsError(
                self,
                "access_role_names",
                f"{bad} are not IAM role names; give names, not ARNs, e.g. ('DataScientist',)",
            )


def open_statements(notebook_arn: str, props: NotebookProps) -> list[iam.PolicyStatement]:
    """N6: open this notebook only through the named VPC endpoints or from the named ranges (one
    statement each, so either source suffices)."""
    sources = [
        (
            "OpenThisNotebookThroughVpcEndpoints",
            "StringEquals",
            "aws:SourceVpce",
            props.source_vpc_endpoint_ids,
        ),
        ("OpenThisNotebookFromNetworks", "IpAddress", "aws:SourceIp", props.source_cidrs),
    ]
    return [
        iam.PolicyStatement(
            sid=sid,
            actions=list(OPEN_ACTIONS),
            resources=[notebook_arn],
            conditions={operator: {key: list(values)}},
        )
        for sid, operator, key, values in sources
        if values
    ]


class ProjectNotebook(Construct):
    """Exposes ``instance``, ``lifecycle``, ``role``, ``grants``, ``open_policy``, ``name`` and ``arn``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: NotebookProps,
        subnet: ec2.ISubnet,
        security_group: ec2.ISecurityGroup,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        data_key: kms.IKey,
        artifacts_key: kms.IKey,
        boundary: iam.IManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.name = props.name
        self.arn = stack.format_arn(
            service="sagemaker", resource="notebook-instance", resource_name=self.name
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            path=props.role_path,
            description=f"{props.qualifier}: notebook instance {self.name}",
            permissions_boundary=boundary,
        )
        data_prefix = props.data_prefix
        pipeline_prefix = f"{props.pipeline_name}/"
        log_group = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/NotebookInstances",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.grants = [
            Grant(
                "ReadRawDatasetPrefix",
                ("s3:GetObject", "s3:GetObjectVersion"),
                (raw_bucket.arn_for_objects(f"{data_prefix}*"),),
                "explore the ingested dataset under its raw-bucket prefix (not Firehose's error output)",
            ),
            Grant(
                "ReadCurated",
                ("s3:GetObject", "s3:GetObjectVersion"),
                (curated_bucket.arn_for_objects("*"),),
                "the curated bucket holds only cleaned project data, all of it readable by ML engineers",
            ),
            Grant(
                "ReadPipelineArtifacts",
                ("s3:GetObject",),
                (artifacts_bucket.arn_for_objects(f"{pipeline_prefix}*"),),
                "inspect the pipeline's outputs, evaluations and models under its prefix",
            ),
            Grant(
                "NotebookWorkspace",
                ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
                (artifacts_bucket.arn_for_objects(f"{NOTEBOOK_PREFIX}*"),),
                f"notebook users keep their own files under {NOTEBOOK_PREFIX} of the artifacts bucket",
            ),
            Grant(
                "ListReadablePrefixes",
                ("s3:ListBucket",),
                (raw_bucket.bucket_arn, artifacts_bucket.bucket_arn),
                "list only the prefixes above",
                {
                    "StringLike": {
                        "s3:prefix": [f"{data_prefix}*", f"{pipeline_prefix}*", f"{NOTEBOOK_PREFIX}*"]
                    }
                },
            ),
            Grant(
                "ListCurated", ("s3:ListBucket",), (curated_bucket.bucket_arn,), "browse the curated bucket"
            ),
            Grant(
                "StopItselfWhenIdle",
                ("sagemaker:StopNotebookInstance", "sagemaker:DescribeNotebookInstance"),
                (self.arn,),
                "the idle auto-stop stops this instance with its own role",
            ),
            Grant(
                "NotebookLogGroup",
                ("logs:CreateLogGroup", "logs:DescribeLogStreams"),
                (log_group,),
                "SageMaker writes notebook logs to its fixed group /aws/sagemaker/NotebookInstances",
            ),
            Grant(
                "OwnLogStreams",
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                (f"{log_group}:log-stream:{self.name}/*",),
                f"log streams of this notebook only ({self.name}/jupyter.log, .../LifecycleConfigOnStart)",
            ),
        ]
        data_key.grant_decrypt(self.role)
        artifacts_key.grant_encrypt_decrypt(self.role)
        attach(
            self.role,
            self.grants,
            granted_wildcards={
                f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]": (
                    f"{action} comes from grant_encrypt_decrypt() on the artifacts key alone: notebook files "
                    "under notebooks/ are written with data keys it generates"
                )
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
            },
        )

        script = on_start_script(props.idle_minutes)
        content = base64.b64encode(script.encode("utf-8")).decode("ascii")
        self.lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "AutoStop",
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=content
                )
            ],
        )
        self.instance = sagemaker.CfnNotebookInstance(
            self,
            "Instance",
            notebook_instance_name=self.name,
            instance_type=props.instance_type,
            platform_identifier=props.platform_identifier,
            role_arn=self.role.role_arn,
            subnet_id=subnet.subnet_id,
            security_group_ids=[security_group.security_group_id],
            direct_internet_access="Disabled",
            root_access="Disabled",
            kms_key_id=data_key.key_arn,
            volume_size_in_gb=props.volume_size_gb,
            lifecycle_config_name=self.lifecycle.attr_notebook_instance_lifecycle_config_name,
            instance_metadata_service_configuration=sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                minimum_instance_metadata_service_version="2"
            ),
        )
        for rule in (
            "sagemaker_notebook_no_direct_internet_access_check",
            "sagemaker_notebook_instance_inside_vpc_check",
        ):
            acknowledge_cross_stack(self.instance, rule, subnet)
        # The instance starts at creation: its role's policy must exist by then.
        self.instance.node.add_dependency(self.role.node.find_child("DefaultPolicy"))

        self.open_policy = iam.ManagedPolicy(
            self,
            "OpenPolicy",
            description=f"{props.qualifier}: open Jupyter on {self.name} (start or stop it), nothing else",
            statements=open_statements(self.arn, props),
            roles=[
                iam.Role.from_role_name(self, f"Opener{i}", name)
                for i, name in enumerate(props.access_role_names)
            ],
        )
        acknowledge_inline_policy(
            self.role,
            f"the notebook role's policy is written for {self.name} alone (its prefixes, keys, logs and "
            "its own stop); a managed copy could be attached to other principals",
        )
