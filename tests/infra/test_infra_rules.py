"""rookery's rule pack on small hand-written templates: each rule fires on the bad case, not the good."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from infra.audit.rules import ROOKERY_RULES, RULE_ORDER, Rule, RulePack
from infra.audit.rules.pack import in_order
from infra.audit.template import flatten


def _findings(template: dict[str, Any], rule_id: str) -> list[tuple[str, str]]:
    return [(f.logical_id, f.message) for f in ROOKERY_RULES.evaluate(template) if f.rule_id == rule_id]


def _t(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


ANY = {"AWS": "*"}
ACCOUNT = {"StringEquals": {"aws:PrincipalAccount": "123456789012"}}


def _vpc_with_flow_log(**extra: dict[str, Any]) -> dict[str, Any]:
    return _t(
        Vpc={"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        Group={"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": "k", "RetentionInDays": 30}},
        Flow={
            "Type": "AWS::EC2::FlowLog",
            "Properties": {
                "ResourceId": {"Ref": "Vpc"},
                "TrafficType": "ALL",
                "LogGroupName": {"Ref": "Group"},
            },
        },
        **extra,
    )


@pytest.mark.parametrize(
    ("resource", "props"),
    [
        ("AWS::EC2::InternetGateway", {}),
        ("AWS::EC2::NatGateway", {"SubnetId": "s"}),
        ("AWS::EC2::Route", {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw"}),
        ("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": True}),
    ],
)
def test_v1_flags_every_path_to_the_internet(resource: str, props: dict[str, Any]) -> None:
    assert _findings(_t(Bad={"Type": resource, "Properties": props}), "Rookery-V1")[0][0] == "Bad"
    assert (
        _findings(
            _t(Ok={"Type": "AWS::EC2::Subnet", "Properties": {"MapPublicIpOnLaunch": False}}), "Rookery-V1"
        )
        == []
    )


def test_v1b_requires_a_flow_log_to_an_encrypted_retained_group() -> None:
    assert _findings(_vpc_with_flow_log(), "Rookery-V1b") == []
    no_flow = _vpc_with_flow_log()
    del no_flow["Resources"]["Flow"]
    assert _findings(no_flow, "Rookery-V1b") == [("Vpc", "the VPC has no flow log of ALL traffic")]
    plain = _vpc_with_flow_log()
    del plain["Resources"]["Group"]["Properties"]["KmsKeyId"]
    assert "lacks a KMS key" in _findings(plain, "Rookery-V1b")[0][1]


def test_v2_flags_an_endpoint_without_a_policy() -> None:
    bare = _t(E={"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Interface"}})
    assert _findings(bare, "Rookery-V2") == [
        ("E", "the VPC endpoint has no endpoint policy (AWS's default allows everything)")
    ]


def _interface(statement: dict[str, Any], ingress: dict[str, Any]) -> dict[str, Any]:
    return _t(
        E={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcEndpointType": "Interface",
                "SecurityGroupIds": [{"Fn::GetAtt": ["Sg", "GroupId"]}],
                "PolicyDocument": {"Statement": [statement]},
            },
        },
        Sg={"Type": "AWS::EC2::SecurityGroup", "Properties": {}},
        In={
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {"GroupId": {"Fn::GetAtt": ["Sg", "GroupId"]}, **ingress},
        },
    )


GOOD_STATEMENT = {
    "Effect": "Allow",
    "Principal": ANY,
    "Action": "kms:Decrypt",
    "Resource": "*",
    "Condition": ACCOUNT,
}
GOOD_INGRESS = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": "sg-workload"}


def test_v2b_endpoint_security_groups_admit_only_groups_on_443() -> None:
    assert _findings(_interface(GOOD_STATEMENT, GOOD_INGRESS), "Rookery-V2b") == []
    cidr = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"}
    assert "address range" in _findings(_interface(GOOD_STATEMENT, cidr), "Rookery-V2b")[0][1]
    wide = {**GOOD_INGRESS, "FromPort": 0, "ToPort": 65535}
    assert "more than TCP 443" in _findings(_interface(GOOD_STATEMENT, wide), "Rookery-V2b")[0][1]


def test_v2c_endpoint_policies_pin_the_principal_account_and_never_allow_every_action() -> None:
    assert _findings(_interface(GOOD_STATEMENT, GOOD_INGRESS), "Rookery-V2c") == []
    open_statement = {k: v for k, v in GOOD_STATEMENT.items() if k != "Condition"}
    assert (
        "without an account condition"
        in _findings(_interface(open_statement, GOOD_INGRESS), "Rookery-V2c")[0][1]
    )
    star = {**GOOD_STATEMENT, "Action": "*"}
    assert "every action" in _findings(_interface(star, GOOD_INGRESS), "Rookery-V2c")[0][1]


def _gateway(*resources_: Any) -> dict[str, Any]:
    return _t(
        S3={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]},
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": ANY,
                            "Action": "s3:GetObject",
                            "Resource": list(resources_),
                        }
                    ]
                },
            },
        }
    )


def test_d2_the_s3_gateway_names_every_bucket() -> None:
    named = _gateway(
        {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":s3:::prod-eu-west-1-starport-layer-bucket/*"],
            ]
        }
    )
    assert _findings(named, "Rookery-D2") == []
    assert _findings(named, "Rookery-V2c") == []  # named AWS-owned buckets need no account condition
    for wildcard in ("*", "arn:aws:s3:::*", "arn:aws:s3:::rookery-*/*"):
        assert _findings(_gateway(wildcard), "Rookery-D2"), wildcard


def _bucket_with_policy(statement: dict[str, Any] | None) -> dict[str, Any]:
    template = _t(
        Data={
            "Type": "AWS::S3::Bucket",
            "Properties": {"LoggingConfiguration": {"DestinationBucketName": {"Ref": "Logs"}}},
        },
        Logs={"Type": "AWS::S3::Bucket", "Properties": {}},
    )
    if statement:
        template["Resources"]["Policy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "Data"}, "PolicyDocument": {"Statement": [statement]}},
        }
    return template


def test_d1b_data_buckets_deny_access_outside_the_endpoint_but_log_buckets_are_exempt() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": ANY,
        "Action": "s3:*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}},
    }
    assert _findings(_bucket_with_policy(deny), "Rookery-D1b") == []
    assert [f[0] for f in _findings(_bucket_with_policy(None), "Rookery-D1b")] == ["Data"]
    allow = {**deny, "Effect": "Allow"}
    assert [f[0] for f in _findings(_bucket_with_policy(allow), "Rookery-D1b")] == ["Data"]


def test_d1b2_every_exception_to_the_endpoint_deny_needs_its_written_reason() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": ANY,
        "Action": "s3:*",
        "Condition": {
            "StringNotEquals": {"aws:SourceVpce": "vpce-1"},
            "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::1:role/deploy", "arn:aws:iam::1:role/load"]},
            "ForAllValues:StringNotEquals": {"aws:CalledVia": ["athena.amazonaws.com"]},
        },
    }
    template = _bucket_with_policy(deny)
    policy = template["Resources"]["Policy"]
    policy["Metadata"] = {
        "rookery:vpc-endpoint-exceptions": ["deploys the bucket", "loads the data from its service"],
        "rookery:vpc-endpoint-service-exceptions": [
            {"service": "athena.amazonaws.com", "reason": "queries run from Athena's network"}
        ],
    }
    assert _findings(template, "Rookery-D1b2") == []
    policy["Metadata"] = {"rookery:vpc-endpoint-exceptions": ["deploys the bucket", " "]}
    assert _findings(template, "Rookery-D1b2") == [
        ("Policy", "arn:aws:iam::1:role/load may skip the VPC endpoint without a reason"),
        ("Policy", "calls via athena.amazonaws.com may skip the VPC endpoint without a reason"),
    ]


def test_d3_keys_rotate_and_never_trust_any_principal_unconditionally() -> None:
    root = {"AWS": "arn:aws:iam::123456789012:root"}
    key: dict[str, Any] = {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True, "KeyPolicy": {
        "Statement": [{"Effect": "Allow", "Principal": root, "Action": "kms:*", "Resource": "*"}]
    }}}  # fmt: skip
    assert _findings(_t(K=key), "Rookery-D3") == []
    lazy = copy.deepcopy(key)
    lazy["Properties"]["EnableKeyRotation"] = False
    lazy["Properties"]["KeyPolicy"]["Statement"][0]["Principal"] = "*"
    assert [m for _, m in _findings(_t(K=lazy), "Rookery-D3")] == [
        "the key does not rotate",
        "the key policy allows any principal without a condition",
    ]


def _glue(encryption: dict[str, Any], crawler: dict[str, Any]) -> dict[str, Any]:
    return _t(
        Db={"Type": "AWS::Glue::Database", "Properties": {}},
        Enc={
            "Type": "AWS::Glue::DataCatalogEncryptionSettings",
            "Properties": {"DataCatalogEncryptionSettings": encryption},
        },
        Sec={"Type": "AWS::Glue::SecurityConfiguration", "Properties": {"EncryptionConfiguration": {
            "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS"},
            "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS"}],
        }}},
        Crawler={"Type": "AWS::Glue::Crawler", "Properties": crawler},
    )  # fmt: skip


GOOD_CATALOG = {
    "EncryptionAtRest": {"CatalogEncryptionMode": "SSE-KMS", "SseAwsKmsKeyId": "k"},
    "ConnectionPasswordEncryption": {"ReturnConnectionPasswordEncrypted": True, "KmsKeyId": "k"},
}


def test_d4_catalog_encryption_and_crawler_security_configuration() -> None:
    assert (
        _findings(_glue(GOOD_CATALOG, {"CrawlerSecurityConfiguration": {"Ref": "Sec"}}), "Rookery-D4") == []
    )
    assert _findings(_glue({}, {"CrawlerSecurityConfiguration": {"Ref": "Sec"}}), "Rookery-D4")[0][
        1
    ].startswith("the Glue catalog is not encrypted with a KMS key")
    assert _findings(_glue(GOOD_CATALOG, {}), "Rookery-D4") == [
        ("Crawler", "the crawler has no security configuration of this stack")
    ]


def test_d5_athena_workgroup_must_enforce_kms_results() -> None:
    good = {"WorkGroupConfiguration": {"EnforceWorkGroupConfiguration": True, "ResultConfiguration": {
        "OutputLocation": "s3://b/athena-results/",
        "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": "k"},
    }}}  # fmt: skip
    assert _findings(_t(W={"Type": "AWS::Athena::WorkGroup", "Properties": good}), "Rookery-D5") == []
    loose = {
        "WorkGroupConfiguration": {
            "ResultConfiguration": {"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}
        }
    }
    assert len(_findings(_t(W={"Type": "AWS::Athena::WorkGroup", "Properties": loose}), "Rookery-D5")) == 3


def test_d6_firehose_needs_customer_key_error_prefix_kms_logging_and_buffering() -> None:
    stream = {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {
        "DeliveryStreamType": "DirectPut",
        "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "k"},
        "ExtendedS3DestinationConfiguration": {
            "ErrorOutputPrefix": "errors/",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": "k"}},
            "CloudWatchLoggingOptions": {"Enabled": True}, "BufferingHints": {"IntervalInSeconds": 60},
        },
    }}  # fmt: skip
    assert _findings(_t(F=stream), "Rookery-D6") == []
    bare = {
        "Type": "AWS::KinesisFirehose::DeliveryStream",
        "Properties": {"ExtendedS3DestinationConfiguration": {}},
    }
    assert len(_findings(_t(F=bare), "Rookery-D6")) == 5


def test_d7_stateful_resources_need_explicit_matching_removal_policies() -> None:
    kept = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    assert _findings(_t(B=kept), "Rookery-D7") == []
    assert _findings(_t(B={"Type": "AWS::S3::Bucket"}), "Rookery-D7")[0][0] == "B"
    mixed = {**kept, "UpdateReplacePolicy": "Delete"}
    assert _findings(_t(B=mixed), "Rookery-D7")[0][0] == "B"


def test_n1_notebook_defaults_are_unsafe_and_flagged() -> None:
    defaults = {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {"InstanceType": "ml.t3.medium"}}
    assert len(_findings(_t(N=defaults), "Rookery-N1")) == 5
    safe = {"Type": "AWS::SageMaker::NotebookInstance", "Properties": {
        "RootAccess": "Disabled", "DirectInternetAccess": "Disabled", "SubnetId": "s", "KmsKeyId": "k",
        "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": "2"},
    }}  # fmt: skip
    assert _findings(_t(N=safe), "Rookery-N1") == []


def test_h1_h2_endpoint_config_keys_and_model_isolation() -> None:
    config = {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {"DataCaptureConfig": {}}}
    assert len(_findings(_t(C=config), "Rookery-H1")) == 2
    model = {"Type": "AWS::SageMaker::Model", "Properties": {}}
    assert len(_findings(_t(M=model), "Rookery-H2")) == 2
    isolated = {
        "Type": "AWS::SageMaker::Model",
        "Properties": {"VpcConfig": {}, "EnableNetworkIsolation": True},
    }
    # An empty VpcConfig is still "not in the VPC".
    assert _findings(_t(M=isolated), "Rookery-H2") == [("M", "the model does not run in the VPC")]


def test_i1_no_full_access_policies_and_passrole_only_to_a_service() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"ManagedPolicyArns": [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonSageMakerFullAccess"]]}
    ]}}  # fmt: skip
    assert "AmazonSageMakerFullAccess" in _findings(_t(R=role), "Rookery-I1")[0][1]
    pass_role: dict[str, Any] = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": "arn:aws:iam::1:role/x",
    }
    policy = {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [pass_role]}}}
    assert _findings(_t(P=policy), "Rookery-I1") == [
        ("P", "iam:PassRole without an iam:PassedToService condition")
    ]
    pass_role["Condition"] = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert _findings(_t(P=policy), "Rookery-I1") == []


_MONITORING_JOB: dict[str, Any] = {
    "NetworkConfig": {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": ["sg"], "Subnets": ["s"]},
    },
    "MonitoringResources": {"ClusterConfig": {"VolumeKmsKeyId": "k", "InstanceCount": 1}},
    "MonitoringOutputConfig": {"KmsKeyId": "k", "MonitoringOutputs": []},
    "MonitoringAppSpecification": {"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rookery:1"},
}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("NetworkConfig", "EnableNetworkIsolation"), False, "not network-isolated"),
        (("NetworkConfig", "EnableInterContainerTrafficEncryption"), None, "inter-container traffic"),
        (("NetworkConfig", "VpcConfig"), None, "does not run in the VPC"),
        (("MonitoringResources", "ClusterConfig", "VolumeKmsKeyId"), None, "volume is not encrypted"),
        (("MonitoringOutputConfig", "KmsKeyId"), None, "reports are not encrypted"),
        (
            ("MonitoringAppSpecification", "ImageUri"),
            "public.ecr.aws/x/monitor:1",
            "not an image of a private",
        ),
    ],
)
def test_m1_flags_a_monitoring_job_outside_the_perimeter(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    def schedule(job: dict[str, Any]) -> dict[str, Any]:
        config = {
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinition": job,
        }
        return _t(
            S={
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {"MonitoringScheduleConfig": config},
            }
        )

    assert _findings(schedule(_MONITORING_JOB), "Rookery-M1") == []
    broken = copy.deepcopy(_MONITORING_JOB)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    findings = _findings(schedule(broken), "Rookery-M1")
    assert len(findings) == 1 and findings[0][0] == "S" and message in findings[0][1]


def test_m1_reads_model_quality_job_definitions_too() -> None:
    job = {
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        "JobResources": {"ClusterConfig": {"VolumeKmsKeyId": "k"}},
        "ModelQualityJobOutputConfig": {},
        "ModelQualityAppSpecification": {"ImageUri": {"Fn::Sub": "asset"}},
    }
    template = _t(Q={"Type": "AWS::SageMaker::ModelQualityJobDefinition", "Properties": job})
    assert sorted(m for _, m in _findings(template, "Rookery-M1")) == [
        "the monitoring job does not run in the VPC",
        "the monitoring job's reports are not encrypted with a customer key",
    ]


def test_the_pack_extends_with_later_rules_and_refuses_duplicates() -> None:
    def no_pipelines(template: Any) -> list[tuple[str, str]]:
        return [
            (k, "workteam")
            for k, r in template["Resources"].items()
            if r["Type"] == "AWS::SageMaker::Workteam"
        ]

    extended = ROOKERY_RULES.extended(Rule("Rookery-X1", "X1", "no workteams", "remove it", no_pipelines))
    template = _t(P={"Type": "AWS::SageMaker::Workteam", "Properties": {}})
    assert [f.rule_id for f in extended.evaluate(template)] == ["Rookery-X1"]
    assert ROOKERY_RULES.evaluate(template) == []
    with pytest.raises(ValueError, match="appear twice"):
        ROOKERY_RULES.extended(ROOKERY_RULES.rules[0])
    with pytest.raises(ValueError, match="must start with 'Rookery-'"):
        RulePack("Rookery", (Rule("Other-X", "X", "t", "f", no_pipelines),))


def test_the_pack_order_names_every_declared_rule_once() -> None:
    rules = ROOKERY_RULES.rules
    assert [r.id for r in rules] == list(RULE_ORDER)
    # The last rule, whichever it is (rules are appended), left out of the order.
    with pytest.raises(ValueError, match=rf"add \['{re.escape(RULE_ORDER[-1])}'\] at its end"):
        in_order(rules, RULE_ORDER[:-1])
    with pytest.raises(ValueError, match=r"remove \['Rookery-X1'\] \(no rule declares them\)"):
        in_order(rules, (*RULE_ORDER, "Rookery-X1"))
    with pytest.raises(ValueError, match=r"list \['Rookery-V1'\] once"):
        in_order(rules, (*RULE_ORDER, "Rookery-V1"))


def test_flatten_renders_intrinsics_readably() -> None:
    value = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Fn::GetAtt": ["B", "Arn"]}]]}
    assert flatten(value) == "arn:<AWS::Partition>:s3:::<B>"


def _ecr_endpoint(service: str, *resources: Any, actions: Any = "ecr:BatchGetImage") -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcEndpointType": "Interface",
            "ServiceName": {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, service]]},
            "PolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": ANY,
                        "Action": "ecr:GetAuthorizationToken",
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Principal": ANY,
                        "Action": actions,
                        "Resource": list(resources),
                        "Condition": ACCOUNT,
                    },
                ]
            },
        },
    }


OWN_REPOSITORIES = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":ecr:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":repository/*",
        ],
    ]
}


@pytest.mark.parametrize("service", [".ecr.api", ".ecr.dkr"])
def test_e1_ecr_endpoints_admit_named_accounts_only(service: str) -> None:
    allowed = _t(
        E=_ecr_endpoint(service, OWN_REPOSITORIES, "arn:aws:ecr:eu-west-1:141502667606:repository/x")
    )
    assert _findings(allowed, "Rookery-E1") == []
    # What the endpoints allowed before E1: image pulls from repositories of any account.
    any_account = _t(E=_ecr_endpoint(service, "arn:aws:ecr:eu-west-1:*:repository/*"))
    assert _findings(any_account, "Rookery-E1") == [
        ("E", "'arn:aws:ecr:eu-west-1:*:repository/*' admits repositories of any account, not named ones")
    ]
    assert _findings(_t(E=_ecr_endpoint(service, "arn:aws:ecr:*:12345678901?:repository/*")), "Rookery-E1")
    everything = _t(E=_ecr_endpoint(service, "*"))
    assert _findings(everything, "Rookery-E1") == [
        ("E", "['ecr:batchgetimage'] are allowed on every registry ('*')")
    ]
    # Other endpoints are V2c's and D2's business.
    assert _findings(_t(E=_ecr_endpoint(".sts", "*")), "Rookery-E1") == []
