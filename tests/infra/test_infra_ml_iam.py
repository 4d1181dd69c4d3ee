"""Control I1 and the runtime guardrails on ``Rookery-<stage>-ML``: least-privilege roles and the boundary.

Every statement is read from the synthesized template; expectations come from the stage config
and the construct objects, never from hard-coded logical ids.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any

import pytest
from infra_testing import Synth, arn_of, ref, resources

from infra.audit.rules import GUARDRAIL_KEYS
from infra.audit.template import flatten
from infra.constructs.guardrails import CEILING_ACTIONS, guardrails
from infra.constructs.sagemaker_role import PIPELINE_JOB_PREFIX, ExecutionScope, execution_role_exception
from stage.names import bucket_name, sagemaker_role_path

pytestmark = pytest.mark.xdist_group("infra-synth")

# Actions that have no resource-level permissions (or whose resources do not exist beforehand),
# the only ones an identity policy of the ML stack may grant on "*", each with the condition a
# SageMaker role needs for it (the trigger Lambda's ENI and X-Ray statements are L1's, unconditioned).
STAR_ALLOWED: Mapping[str, str | None] = {
    "ec2:CreateNetworkInterface": "ec2:vpc",
    "ec2:CreateNetworkInterfacePermission": "ec2:vpc",
    "ec2:DeleteNetworkInterface": "ec2:vpc",
    "ec2:DeleteNetworkInterfacePermission": "ec2:vpc",
    "ec2:DescribeNetworkInterfaces": None,
    "ec2:DescribeVpcs": None,
    "ec2:DescribeDhcpOptions": None,
    "ec2:DescribeSubnets": None,
    "ec2:DescribeSecurityGroups": None,
    "ec2:AssignPrivateIpAddresses": None,
    "ec2:UnassignPrivateIpAddresses": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "ecr:GetAuthorizationToken": None,
    "xray:PutTraceSegments": None,
    "xray:PutTelemetryRecords": None,
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    return [
        s
        for p in resources(synth.ml, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements if "Sid" in s}


def _sagemaker_roles(synth: Synth) -> list[Any]:
    ml = synth.stacks.ml
    return [ml.execution.role, *([ml.notebook.role] if ml.notebook else [])]


def _granting_policies(synth: Synth) -> dict[str, Mapping[str, Any]]:
    boundary = synth.logical_id(synth.stacks.ml.guardrails.policy)
    return {
        logical_id: policy
        for logical_id, policy in {
            **resources(synth.ml, "AWS::IAM::Policy"),
            **resources(synth.ml, "AWS::IAM::ManagedPolicy"),
        }.items()
        if logical_id != boundary
    }


# ---------------------------------------------------------------- I1 everywhere in the stack


def test_no_policy_grants_every_action_or_a_whole_service(synth: Synth) -> None:
    for logical_id, policy in _granting_policies(synth).items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (logical_id, action)


def test_star_resources_only_for_actions_without_resource_scopes(synth: Synth) -> None:
    sagemaker_roles = {synth.logical_id(r) for r in _sagemaker_roles(synth)}
    for logical_id, policy in _granting_policies(synth).items():
        roles = {r["Ref"] for r in policy["Properties"].get("Roles", [])}
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" not in _as_list(statement["Resource"]):
                continue
            keys = {k.lower() for block in statement.get("Condition", {}).values() for k in block}
            for action in _as_list(statement["Action"]):
                assert action in STAR_ALLOWED, (logical_id, action)
                needed = STAR_ALLOWED[action] if roles & sagemaker_roles else None
                assert needed is None or needed in keys, (logical_id, action, keys)


def test_no_role_has_managed_policies_attached(synth: Synth) -> None:
    for logical_id, role in resources(synth.ml, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_pass_role_only_for_the_execution_role_to_sagemaker(synth: Synth) -> None:
    execution = arn_of(synth.logical_id(synth.stacks.ml.execution.role))
    passes = [
        (logical_id, s)
        for logical_id, policy in _granting_policies(synth).items()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("iam:") for a in _as_list(s["Action"]))
    ]
    assert len(passes) == 1
    _, statement = passes[0]
    assert statement["Action"] == "iam:PassRole" and statement["Resource"] == execution
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


# ---------------------------------------------------------------- the execution role


def test_the_execution_role_is_sagemakers_under_the_stage_path_with_the_boundary(synth: Synth) -> None:
    ml = synth.stacks.ml
    role = synth.props(ml.execution.role)
    assert (
        role["Path"] == sagemaker_role_path(synth.stage) == f"/{synth.stage.qualifier}/sagemaker-execution/"
    )
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert (
        trust["Principal"] == {"Service": "sagemaker.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    )
    assert role["PermissionsBoundary"] == ref(synth.logical_id(ml.guardrails.policy))


def test_the_data_stack_trusts_exactly_the_execution_roles_path_on_the_artifacts_bucket(synth: Synth) -> None:
    exception = execution_role_exception(sagemaker_role_path(synth.stage))
    assert exception.buckets == ("artifacts",)
    pattern = synth.stacks.data.resolve(exception.arn)["Fn::Sub"]
    role_path = synth.props(synth.stacks.ml.execution.role)["Path"]
    assert pattern.endswith(f":role{role_path}*")


def test_s3_access_is_the_dataset_prefix_and_the_pipeline_prefix_only(synth: Synth) -> None:
    stage, ml = synth.stage, synth.stacks.ml
    statements = _by_sid(_role_statements(synth, ml.execution.role))
    s3 = [s for s in statements.values() if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    assert {s["Sid"] for s in s3} == {
        "ReadRawDatasetPrefix",
        "ReadWritePipelineArtifacts",
        "ListOwnPrefixes",
        "LocateBuckets",
    }
    # A stage pinned to an account (prod) resolves account, region and partition at synth.
    account = stage.account or "<AWS::AccountId>"
    region = stage.region if stage.account else "<AWS::Region>"
    partition = "aws" if stage.account else "<AWS::Partition>"

    def bucket(purpose: str) -> str:
        return f"arn:{partition}:s3:::" + bucket_name(stage, purpose, account=account, region=region)

    raw, artifacts = bucket("raw"), bucket("artifacts")
    pipeline = ml.pipeline.pipeline_name
    assert flatten(statements["ReadRawDatasetPrefix"]["Resource"]) == f"{raw}/{stage.dataset.name}/*"
    assert flatten(statements["ReadWritePipelineArtifacts"]["Resource"]) == f"{artifacts}/{pipeline}/*"
    assert "s3:DeleteObject" not in statements["ReadWritePipelineArtifacts"]["Action"]
    assert statements["ListOwnPrefixes"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{stage.dataset.name}/*", f"{pipeline}/*"]}
    }
    assert sorted(flatten(r) for r in statements["ListOwnPrefixes"]["Resource"]) == sorted([raw, artifacts])


def test_the_execution_roles_sagemaker_actions_are_on_pipeline_jobs_and_the_stage_group(synth: Synth) -> None:
    stage, ml = synth.stage, synth.stacks.ml
    statements = _by_sid(_role_statements(synth, ml.execution.role))
    sagemaker = {
        sid: s
        for sid, s in statements.items()
        if any(a.startswith("sagemaker:") for a in _as_list(s["Action"]))
    }
    expected = {
        "RunPipelineJobs",
        "CreatePipelineModels",
        "RegisterInStageGroup",
        "ReadStageGroupVersions",
        "ReadStageGroup",
    }
    if stage.ml.tuning.enabled:
        expected.add("RunTuningJobs")
    assert set(sagemaker) == expected  # tuning permissions only where the stage tunes
    jobs = [flatten(r) for r in sagemaker["RunPipelineJobs"]["Resource"]]
    assert sorted(r.rsplit(":", 1)[-1] for r in jobs) == sorted(
        f"{kind}/{PIPELINE_JOB_PREFIX}*" for kind in ("processing-job", "training-job", "transform-job")
    )
    group = ml.registry.group_name
    assert flatten(sagemaker["RegisterInStageGroup"]["Resource"]).endswith(f":model-package/{group}/*")
    # R1: pending registrations only; the role never changes a version's status.
    assert sagemaker["RegisterInStageGroup"]["Action"] == "sagemaker:CreateModelPackage"
    assert sagemaker["RegisterInStageGroup"]["Condition"] == {
        "StringEquals": {"sagemaker:ModelApprovalStatus": ["PendingManualApproval"]}
    }
    assert sorted(_as_list(sagemaker["ReadStageGroupVersions"]["Action"])) == [
        "sagemaker:AddTags",
        "sagemaker:DescribeModelPackage",
    ]
    assert flatten(sagemaker["ReadStageGroup"]["Resource"]).endswith(f":model-package-group/{group}")
    all_actions = {a for s in sagemaker.values() for a in _as_list(s["Action"])}
    assert not {
        a for a in all_actions if "Notebook" in a or "Endpoint" in a or a.startswith("sagemaker:Delete")
    }


def test_the_execution_role_uses_the_stage_keys_through_grants(synth: Synth) -> None:
    ml, keys = synth.stacks.ml, synth.stacks.data.keys
    statements = _role_statements(synth, ml.execution.role)
    kms = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    resources_by_action: dict[str, set[str]] = {}
    for statement in kms:
        for action in _as_list(statement["Action"]):
            resources_by_action.setdefault(action, set()).add(
                json.dumps(statement["Resource"], sort_keys=True)
            )
    artifacts = json.dumps(ml.resolve(keys.artifacts.key_arn), sort_keys=True)
    data = json.dumps(ml.resolve(keys.data.key_arn), sort_keys=True)
    assert resources_by_action["kms:Decrypt"] == {artifacts, data}
    assert resources_by_action["kms:Encrypt"] == {artifacts}
    assert resources_by_action["kms:CreateGrant"] == {artifacts}
    [grant] = [s for s in kms if s.get("Sid") == "GrantVolumeKeyToAwsResources"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_execution_role_pulls_only_from_the_project_image_repository(synth: Synth) -> None:
    ml = synth.stacks.ml
    statements = _role_statements(synth, ml.execution.role)
    pulls = [s for s in statements if "ecr:BatchGetImage" in _as_list(s["Action"])]
    assert len(pulls) == 1
    repository = flatten(pulls[0]["Resource"])
    assert repository.endswith(":repository/" + flatten(ml.resolve(ml.image.repository.repository_name)))
    assert "cdk-hnb659fds-container-assets-" in repository


def test_job_logs_are_sagemakers_job_log_groups_with_pipeline_job_streams(synth: Synth) -> None:
    tune = synth.stage.ml.tuning.enabled
    statements = _by_sid(_role_statements(synth, synth.stacks.ml.execution.role))
    for kind in ("Processing", "Training", "Transform"):
        group = flatten(statements[f"{kind}JobLogGroup"]["Resource"])
        assert group.endswith(f":log-group:/aws/sagemaker/{kind}Jobs")
        streams = flatten(statements[f"{kind}JobLogStreams"]["Resource"])
        wildcard = "*" if kind == "Training" and tune else f"{PIPELINE_JOB_PREFIX}*"
        assert streams == f"{group}:log-stream:{wildcard}"


def test_external_images_must_be_ecr_images() -> None:
    with pytest.raises(
        ValueError, match="not in an ECR repository; the execution role can pull only from ECR"
    ):
        ExecutionScope("p", "d/", "g", tune=False, external_images=("docker.io/library/python:3.11",))


# ---------------------------------------------------------------- the guardrails boundary


def _boundary(synth: Synth) -> list[dict[str, Any]]:
    return list(synth.props(synth.stacks.ml.guardrails.policy)["PolicyDocument"]["Statement"])


def _denies(synth: Synth) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in _boundary(synth) if s["Effect"] == "Deny"}


def test_both_sagemaker_roles_carry_the_boundary(synth: Synth) -> None:
    boundary = ref(synth.logical_id(synth.stacks.ml.guardrails.policy))
    roles = _sagemaker_roles(synth)
    assert len(roles) == (2 if synth.stage.notebook.enabled else 1)
    for role in roles:
        assert synth.props(role)["PermissionsBoundary"] == boundary


# Monitoring schedules start processing jobs (M1): their definitions carry the same settings.
_MONITORING = {
    "CreateDataQualityJobDefinition",
    "CreateModelQualityJobDefinition",
    "CreateMonitoringSchedule",
    "UpdateMonitoringSchedule",
}
_JOBS = {"CreateProcessingJob", "CreateTrainingJob", "CreateHyperParameterTuningJob", *_MONITORING}
_IN_VPC = {*_JOBS, "CreateModel", "CreateNotebookInstance"}


@pytest.mark.parametrize(
    ("key", "actions"),
    [
        ("sagemaker:VpcSubnets", [_IN_VPC]),
        # N7: jobs and models in the jobs' group, notebooks in theirs: one statement each.
        ("sagemaker:VpcSecurityGroupIds", [{*_JOBS, "CreateModel"}, {"CreateNotebookInstance"}]),
        ("sagemaker:VolumeKmsKey", [{*_JOBS, "CreateTransformJob", "CreateNotebookInstance"}]),
        ("sagemaker:OutputKmsKey", [{*_JOBS, "CreateTransformJob"}]),
        ("sagemaker:NetworkIsolation", [{*_JOBS, "CreateModel"}]),
        ("sagemaker:InterContainerTrafficEncryption", [_JOBS]),
        ("sagemaker:RootAccess", [{"CreateNotebookInstance"}]),
        ("sagemaker:DirectInternetAccess", [{"CreateNotebookInstance"}]),
        ("sagemaker:ModelApprovalStatus", [{"CreateModelPackage"}]),  # R1
    ],
)
def test_the_boundary_denies_a_missing_setting_with_the_sagemaker_condition_key(
    synth: Synth, key: str, actions: list[set[str]]
) -> None:
    missing = [
        s
        for s in _denies(synth).values()
        if s.get("Condition") == {"Null": {key: "true"}} and s["Resource"] == "*"
    ]
    assert [{a.removeprefix("sagemaker:") for a in _as_list(m["Action"])} for m in missing] == actions, key


def test_the_boundary_denies_unsafe_values(synth: Synth) -> None:
    ml, network, keys = synth.stacks.ml, synth.stacks.network.network, synth.stacks.data.keys
    denies = _denies(synth)
    subnets = [ml.resolve(s.subnet_id) for s in network.vpc.isolated_subnets]
    group = ml.resolve(network.workload_security_groups["sagemaker"].security_group_id)
    key_arns = [ml.resolve(keys.artifacts.key_arn), ml.resolve(keys.data.key_arn)]
    assert denies["DenySubnetsOther"]["Condition"] == {
        "ForAnyValue:StringNotEquals": {"sagemaker:VpcSubnets": subnets}
    }
    assert denies["DenySecurityGroupsOther"]["Condition"] == {
        "ForAnyValue:StringNotEquals": {"sagemaker:VpcSecurityGroupIds": [group]}
    }
    assert denies["DenyVolumeKeyOther"]["Condition"] == {"ArnNotEquals": {"sagemaker:VolumeKmsKey": key_arns}}
    assert denies["DenyOutputKeyOther"]["Condition"] == {"ArnNotEquals": {"sagemaker:OutputKmsKey": key_arns}}
    assert denies["DenyNetworkIsolationOther"]["Condition"] == {
        "Bool": {"sagemaker:NetworkIsolation": "false"}
    }
    assert denies["DenyInterContainerTrafficEncryptionOther"]["Condition"] == {
        "Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}
    }
    assert denies["DenyRootAccessOther"]["Condition"] == {
        "StringNotEquals": {"sagemaker:RootAccess": "Disabled"}
    }
    assert denies["DenyDirectInternetAccessOther"]["Condition"] == {
        "StringNotEquals": {"sagemaker:DirectInternetAccess": "Disabled"}
    }


def test_the_boundary_denies_approving_and_registering_anything_but_pending(synth: Synth) -> None:
    """R1: no SageMaker role of the stage can approve a version or register an approved one."""
    for guardrails_ in (
        synth.stacks.ml.guardrails,
        *([synth.stacks.serving.guardrails] if synth.stacks.serving else []),
    ):
        denies = {
            s["Sid"]: s
            for s in synth.props(guardrails_.policy)["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
        }
        assert denies["DenyApprovalStatusChanges"] == {
            "Sid": "DenyApprovalStatusChanges",
            "Effect": "Deny",
            "Action": "sagemaker:UpdateModelPackage",
            "Resource": "*",
        }
        assert denies["DenyModelApprovalStatusOther"]["Action"] == "sagemaker:CreateModelPackage"
        assert denies["DenyModelApprovalStatusOther"]["Condition"] == {
            "StringNotEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
        }


def test_no_role_of_the_stage_may_change_an_approval_status(synth: Synth) -> None:
    """R1: UpdateModelPackage (approve, reject) is nobody's in the stacks: a person approves."""
    for template in (synth.ml, *([synth.serving] if synth.stacks.serving else [])):
        for logical_id, policy in resources(template, "AWS::IAM::Policy").items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = _as_list(statement["Action"])
                assert statement["Effect"] != "Allow" or not [
                    a for a in actions if fnmatch.fnmatchcase("sagemaker:UpdateModelPackage", a)
                ], logical_id


def test_the_boundary_ceiling_grants_no_iam_but_passing_roles_to_sagemaker(synth: Synth) -> None:
    allows = {s["Sid"]: s for s in _boundary(synth) if s["Effect"] == "Allow"}
    assert set(allows) == {"Ceiling", "CeilingPassRoleToSageMakerOnly"}
    assert not [a for a in allows["Ceiling"]["Action"] if a.startswith("iam:") or a == "*"]
    assert sorted(allows["Ceiling"]["Action"]) == sorted(CEILING_ACTIONS)
    assert allows["CeilingPassRoleToSageMakerOnly"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_the_boundary_covers_every_key_the_audit_rule_requires() -> None:
    rules = guardrails(
        subnet_ids=["subnet-1"], security_group_ids=["sg-1"], kms_key_arns=["arn:key"], require_approval=False
    )
    assert {r.key.lower() for r in rules} == GUARDRAIL_KEYS
    approval = guardrails(subnet_ids=["subnet-1"], security_group_ids=["sg-1"], kms_key_arns=["arn:key"])
    assert {r.key.lower() for r in approval} == {*GUARDRAIL_KEYS, "sagemaker:modelapprovalstatus"}


def test_guardrails_refuse_an_empty_perimeter() -> None:
    with pytest.raises(ValueError, match="need the stage's subnets, security groups and KMS keys"):
        guardrails(subnet_ids=[], security_group_ids=["sg-1"], kms_key_arns=["arn:key"])
