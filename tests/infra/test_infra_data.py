"""Controls D1, D1b, D3-D7 and L1 on the synthesized ``Rookery-<stage>-Data`` of every stage."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from infra_testing import Synth, arn_of, ref, resources

from infra.app import repo_context
from infra.audit.template import flatten
from infra.constructs.catalog import QUERY_SCAN_LIMIT_BYTES, dataset_columns
from infra.constructs.data_lake import (
    VIA_SERVICES,
    DataKeys,
    DataLake,
    TrustedPrincipal,
    TrustedService,
    deployment_role,
    prefix_limit_sid,
)
from infra.constructs.function import RUNTIME
from infra.constructs.keys import DENY_GRANTS_SID, DENY_USE_SID, KEY_USERS_METADATA, USE_ACTIONS
from infra.stacks.stage_props import data_keys_props, data_lake_props
from infra.stateful import STATEFUL_RESOURCE_TYPES
from rookery_contracts.ingest import (
    DELIVERY_COMPRESSION,
    METADATA_COLUMNS,
    TRANSFORM_BUFFER_MIB,
    TRANSFORM_INTERVAL_SECONDS,
    TRANSFORM_RETRIES,
)
from stage import load_stage
from stage.names import DATA_BUCKETS, project_role_path

pytestmark = pytest.mark.xdist_group("infra-synth")


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _bucket_policy(synth: Synth, bucket: Any) -> list[dict[str, Any]]:
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in resources(synth.data, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(synth.logical_id(bucket))
    ]
    return _statements(policy)


def _role_statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    return [
        s
        for p in resources(synth.data, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


# ---------------------------------------------------------------- D3 keys


def test_one_rotating_customer_key_per_purpose(synth: Synth) -> None:
    keys = synth.stacks.data.keys
    aliases = {
        flatten(a["Properties"]["TargetKeyId"]): a["Properties"]["AliasName"]
        for a in resources(synth.data, "AWS::KMS::Alias").values()
    }
    for purpose, key in (("data", keys.data), ("artifacts", keys.artifacts), ("logs", keys.logs)):
        props = synth.props(key)
        assert props["EnableKeyRotation"] is True
        assert aliases[flatten(arn_of(synth.logical_id(key)))] == f"alias/{synth.stage.qualifier}/{purpose}"
        for statement in props["KeyPolicy"]["Statement"]:
            # A "*" principal only ever in a conditioned deny (K1), never in an allow.
            if statement["Principal"] in ("*", {"AWS": "*"}):
                assert statement["Effect"] == "Deny" and statement["Condition"], purpose
    assert len(resources(synth.data, "AWS::KMS::Key")) == 3


def test_only_the_logs_key_trusts_cloudwatch_logs_and_only_for_this_account(synth: Synth) -> None:
    keys = synth.stacks.data.keys
    logs = [s for s in synth.props(keys.logs)["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    assert len(logs) == 1
    account = synth.stage.account or "<AWS::AccountId>"
    context = flatten(logs[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert context.endswith(f":{account}:log-group:*")
    for key in (keys.data, keys.artifacts):
        assert all("Service" not in s["Principal"] for s in synth.props(key)["KeyPolicy"]["Statement"])


# ---------------------------------------------------------------- K1 key policies


def _key_statements(synth: Synth, key: Any) -> dict[str, dict[str, Any]]:
    return {s.get("Sid", "root"): s for s in synth.props(key)["KeyPolicy"]["Statement"]}


def _all_keys(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}/{logical_id}", key["Properties"])
        for name, template in (("network", synth.network), ("data", synth.data), ("ml", synth.ml))
        for logical_id, key in resources(template, "AWS::KMS::Key").items()
    ]


def test_every_key_denies_grants_that_are_not_for_aws_resources(synth: Synth) -> None:
    """CT.KMS.PR.3's shape: deny kms:CreateGrant to every principal unless an integrated service asks."""
    keys = _all_keys(synth)
    assert len(keys) == 5  # flow logs, data, artifacts, logs, queue
    for where, props in keys:
        [deny] = [s for s in props["KeyPolicy"]["Statement"] if s.get("Sid") == DENY_GRANTS_SID]
        assert deny == {
            "Sid": DENY_GRANTS_SID,
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
            },
        }, where
        # The account keeps administering every key (nothing denies administration).
        root = [
            s for s in props["KeyPolicy"]["Statement"] if s["Effect"] == "Allow" and s["Action"] == "kms:*"
        ]
        [admin] = [flatten(s["Principal"]["AWS"]) for s in root]
        assert admin.startswith("arn:") and admin.endswith(
            f":iam::{synth.stage.account or '<AWS::AccountId>'}:root"
        ), where
        denied = {
            a for s in props["KeyPolicy"]["Statement"] if s["Effect"] == "Deny" for a in _as_list(s["Action"])
        }
        assert denied <= set(USE_ACTIONS), where


def test_data_and_artifacts_keys_serve_only_the_projects_roles(synth: Synth) -> None:
    keys = synth.stacks.data.keys
    stage = synth.stage
    for key in (keys.data, keys.artifacts):
        deny = _key_statements(synth, key)[DENY_USE_SID]
        assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"} and deny["Resource"] == "*"
        assert sorted(_as_list(deny["Action"])) == sorted(USE_ACTIONS)
        condition = deny["Condition"]
        assert condition["StringEquals"] == {
            "aws:PrincipalAccount": stage.account or {"Ref": "AWS::AccountId"}
        }
        assert condition["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}
        users = [flatten(u) for u in condition["ArnNotLike"]["aws:PrincipalArn"]]
        data = synth.stacks.data
        assert users == [
            flatten(data.resolve(deployment_role(data).arn)),
            f"<{synth.logical_id(data.ingestion.role)}>",
            f"<{synth.logical_id(data.ingestion.transform.role)}>",
            f"<{synth.logical_id(data.catalog.crawler_role)}>",
            f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{project_role_path(stage)}*",
        ]
        reasons = synth.resource(key)["Metadata"][KEY_USERS_METADATA]
        assert len(reasons) == len(users) and all(r["reason"] for r in reasons)
    assert DENY_USE_SID not in _key_statements(synth, keys.logs)  # CloudWatch Logs encrypts for every group


def test_every_role_granted_the_data_or_artifacts_key_is_one_of_its_users(synth: Synth) -> None:
    """Reasoned from the templates: a role an IAM policy lets use either key must pass the key's deny."""
    keys = synth.stacks.data.keys
    key_ids = [synth.logical_id(keys.data), synth.logical_id(keys.artifacts)]
    data_users = {
        flatten(u)
        for u in _key_statements(synth, keys.data)[DENY_USE_SID]["Condition"]["ArnNotLike"][
            "aws:PrincipalArn"
        ]
    }
    templates = {
        "data": synth.data,
        "ml": synth.ml,
        **({"serving": synth.serving} if synth.stacks.serving else {}),
    }
    checked = set()
    for name, template in templates.items():
        roles = resources(template, "AWS::IAM::Role")
        for policy in resources(template, "AWS::IAM::Policy").values():
            uses = [
                s
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if s["Effect"] == "Allow"
                and set(_as_list(s["Action"])) & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"}
                and any(k in json.dumps(s["Resource"]) for k in key_ids)
            ]
            for role in (r["Ref"] for r in policy["Properties"]["Roles"]) if uses else ():
                path = roles[role]["Properties"].get("Path", "/")
                local = name == "data" and f"<{role}>" in data_users
                assert local or path.startswith(project_role_path(synth.stage)), (name, role, path)
                checked.add((name, role))
    # The crawler, Firehose, the transform Lambda, the execution role and the notebook at least.
    assert len(checked) >= 5, checked


# ---------------------------------------------------------------- D1 buckets


def test_data_buckets_are_kms_encrypted_with_bucket_keys_by_purpose(synth: Synth) -> None:
    lake, keys = synth.stacks.data.lake, synth.stacks.data.keys
    expected_key = {"raw": keys.data, "curated": keys.data, "artifacts": keys.artifacts}
    for purpose, bucket in lake.buckets.items():
        [rule] = synth.props(bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["BucketKeyEnabled"] is True
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": arn_of(synth.logical_id(expected_key[purpose])),
        }
    assert set(lake.buckets) == set(DATA_BUCKETS)


def test_every_bucket_blocks_public_access_versions_and_enforces_ownership(synth: Synth) -> None:
    lake = synth.stacks.data.lake
    for bucket in (*lake.buckets.values(), lake.access_logs):
        props = synth.props(bucket)
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_every_bucket_denies_plain_http_and_old_tls(synth: Synth) -> None:
    lake = synth.stacks.data.lake
    for bucket in (*lake.buckets.values(), lake.access_logs):
        statements = _bucket_policy(synth, bucket)
        conditions = [s["Condition"] for s in statements if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_data_buckets_log_access_to_the_log_bucket_under_their_purpose(synth: Synth) -> None:
    lake = synth.stacks.data.lake
    for purpose, bucket in lake.buckets.items():
        assert synth.props(bucket)["LoggingConfiguration"] == {
            "DestinationBucketName": ref(synth.logical_id(lake.access_logs)),
            "LogFilePrefix": f"{purpose}/",
        }
    log_bucket = synth.props(lake.access_logs)
    # S3 log delivery cannot write SSE-KMS targets; the gap is acknowledged with that reason.
    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    delivery = [s for s in _bucket_policy(synth, lake.access_logs) if s["Effect"] == "Allow"]
    # One grant per source bucket, each pinned to that bucket and this account.
    assert len(delivery) == len(lake.buckets)
    for statement in delivery:
        assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert statement["Action"] == "s3:PutObject"
        assert set(statement["Condition"]) == {"ArnLike", "StringEquals"}


def test_lifecycle_rules_follow_the_stage_settings(synth: Synth) -> None:
    data = synth.stage.data
    lake = synth.stacks.data.lake
    raw = {r["Id"]: r for r in synth.props(lake.buckets["raw"])["LifecycleConfiguration"]["Rules"]}
    assert raw["expire-raw"]["ExpirationInDays"] == data.raw_expiration_days
    assert raw["infrequent-access"]["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": data.infrequent_access_after_days}
    ]
    for bucket in lake.buckets.values():
        rules = {r["Id"]: r for r in synth.props(bucket)["LifecycleConfiguration"]["Rules"]}
        tidy = rules["tidy-versions-and-uploads"]
        assert tidy["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": data.noncurrent_version_expiration_days
        }
        assert tidy["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    [logs] = synth.props(lake.access_logs)["LifecycleConfiguration"]["Rules"]
    assert logs["ExpirationInDays"] == data.access_log_expiration_days
    assert "expire-raw" not in {
        r["Id"] for r in synth.props(lake.buckets["artifacts"])["LifecycleConfiguration"]["Rules"]
    }


def test_raw_bucket_announces_new_objects_on_eventbridge(synth: Synth) -> None:
    raw = synth.props(synth.stacks.data.lake.buckets["raw"])
    assert raw["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert resources(synth.data, "Custom::S3BucketNotifications") == {}


# ---------------------------------------------------------------- D1b


def _vpc_deny(synth: Synth, bucket: Any) -> dict[str, Any]:
    [deny] = [s for s in _bucket_policy(synth, bucket) if s.get("Sid") == "DenyOutsideProjectVpcEndpoint"]
    return deny


def test_data_buckets_deny_everything_not_through_the_project_endpoint(synth: Synth) -> None:
    network = synth.stacks.network.network
    for bucket in synth.stacks.data.lake.buckets.values():
        deny = _vpc_deny(synth, bucket)
        assert deny["Effect"] == "Deny"
        assert deny["Principal"] == {"AWS": "*"}
        assert deny["Action"] == "s3:*"
        endpoint = deny["Condition"]["StringNotEquals"]["aws:SourceVpce"]
        # The endpoint id comes from the Network stack (a reference, not a literal).
        output = endpoint["Fn::GetStackOutput"]
        assert output["StackName"] == synth.stage.stack_name("Network")
        assert synth.logical_id(network.s3_endpoint) in output["OutputName"]
        assert deny["Condition"]["ForAllValues:StringNotEquals"] == {
            "aws:CalledVia": ["athena.amazonaws.com"]
        }


def test_the_athena_exception_carries_its_written_reason_into_the_template(synth: Synth) -> None:
    [athena] = VIA_SERVICES
    assert athena.service == "athena.amazonaws.com"
    # The reason a reviewer reads says why the exception is needed and what still protects the data.
    assert "aws:SourceVpce" in athena.reason and "KMS key" in athena.reason
    for bucket in synth.stacks.data.lake.buckets.values():
        metadata = synth.resource(bucket.policy)["Metadata"]
        assert metadata["rookery:vpc-endpoint-service-exceptions"] == [
            {"service": "athena.amazonaws.com", "reason": athena.reason}
        ]


def test_vpc_endpoint_exceptions_are_the_deployment_role_and_the_services_that_need_each_bucket(
    synth: Synth,
) -> None:
    data = synth.stacks.data
    deployment = (
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
        "cdk-hnb659fds-cfn-exec-role-${AWS::AccountId}-${AWS::Region}"
    )
    if synth.stage.account:
        deployment = deployment.replace("${AWS::AccountId}", synth.stage.account).replace(
            "${AWS::Region}", synth.stage.region
        )
    firehose = arn_of(synth.logical_id(data.ingestion.role))
    crawler = arn_of(synth.logical_id(data.catalog.crawler_role))
    # The ML stack's execution role, by its IAM path (the pipeline service reads evaluation.json).
    path = f"/{synth.stage.qualifier}/sagemaker-execution/"
    execution = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{path}*"}
    # The Serving stack's model role, by its IAM path (data capture; limited to capture/).
    model_path = f"/{synth.stage.qualifier}/serving-model/"
    serving = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{model_path}*"}
    # The Serving stack's monitoring role, by its IAM path (capture and ground truth in, reports out).
    monitoring_path = f"/{synth.stage.qualifier}/monitoring/"
    monitoring = {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{monitoring_path}*"}
    for purpose, bucket in data.lake.buckets.items():
        principals = _vpc_deny(synth, bucket)["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        expected = (
            [{"Fn::Sub": deployment}]
            + ([firehose, crawler, serving, monitoring] if purpose == "raw" else [])
            + ([execution, monitoring] if purpose == "artifacts" else [])
        )
        assert principals == expected, purpose
        reasons = synth.resource(bucket.policy)["Metadata"]["rookery:vpc-endpoint-exceptions"]
        assert len(reasons) == len(expected) and all(len(r) > 20 for r in reasons)


def _probe_lake() -> tuple[cdk.Stack, DataLake]:
    stack = cdk.Stack(cdk.App(context=repo_context()), "Probe")  # the repo's feature flags, as in synth
    stage = load_stage("dev")
    keys = DataKeys(stack, "Keys", props=data_keys_props(stage))
    lake_props = data_lake_props(stage, account=stack.account, region=stack.region)
    return stack, DataLake(stack, "Lake", props=lake_props, keys=keys)


def test_an_exception_for_an_unknown_bucket_or_without_the_deployment_role_is_refused() -> None:
    _, lake = _probe_lake()
    deployer = TrustedPrincipal(arn="arn:aws:iam::1:role/deployer", reason="deploys the buckets")
    logs_only = TrustedService(service="athena.amazonaws.com", reason="queries", buckets=("logs",))
    with pytest.raises(
        ValueError, match=r"unknown buckets \['logs'\]; choose from \['raw', 'curated', 'artifacts'\]"
    ):
        lake.restrict_to_vpc_endpoint(endpoint_id="vpce-1", trusted=[deployer], via_services=[logs_only])
    with pytest.raises(ValueError, match="needs the deployment role among the trusted principals"):
        lake.restrict_to_vpc_endpoint(endpoint_id="vpce-1", trusted=[])


def test_without_service_exceptions_the_deny_has_no_called_via_escape() -> None:
    stack, lake = _probe_lake()
    deployer = TrustedPrincipal(arn="arn:aws:iam::1:role/deployer", reason="deploys the buckets")
    lake.restrict_to_vpc_endpoint(endpoint_id="vpce-1", trusted=[deployer], via_services=())
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy")
    denies = {
        logical_id: statement
        for logical_id, policy in policies.items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "DenyOutsideProjectVpcEndpoint"
    }
    assert len(denies) == len(DATA_BUCKETS)
    for logical_id, deny in denies.items():
        assert set(deny["Condition"]) == {"StringNotEquals", "ArnNotLike"}
        assert "rookery:vpc-endpoint-service-exceptions" not in policies[logical_id]["Metadata"]


def test_a_prefix_limited_exception_gets_the_rest_of_its_buckets_denied_back() -> None:
    stack, lake = _probe_lake()
    deployer = TrustedPrincipal(arn="arn:aws:iam::1:role/deployer", reason="deploys the buckets")
    writer = TrustedPrincipal(
        arn="arn:aws:iam::1:role/writer",
        reason="writes from a service network",
        buckets=("raw",),
        prefix="capture/",
    )
    lake.restrict_to_vpc_endpoint(endpoint_id="vpce-1", trusted=[deployer, writer], via_services=())
    policies = Template.from_stack(stack).find_resources("AWS::S3::BucketPolicy")
    raw = stack.get_logical_id(lake.buckets["raw"].node.default_child)  # type: ignore[arg-type]
    for policy in policies.values():
        statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}
        limit = statements.get(prefix_limit_sid("capture/"))
        if policy["Properties"]["Bucket"] != {"Ref": raw}:
            assert limit is None  # the exception names the raw bucket only
            continue
        assert statements["DenyOutsideProjectVpcEndpoint"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [
            "arn:aws:iam::1:role/deployer",
            "arn:aws:iam::1:role/writer",
        ]
        assert limit is not None
        assert limit["Effect"] == "Deny" and limit["Action"] == "s3:*"
        assert limit["NotResource"] == {"Fn::Join": ["", [arn_of(raw), "/capture/*"]]}
        assert limit["Condition"] == {
            "StringNotEquals": {"aws:SourceVpce": "vpce-1"},
            "ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::1:role/writer"]},
        }
        assert policy["Metadata"]["rookery:vpc-endpoint-exceptions"] == [
            "deploys the buckets",
            writer.register_entry,
        ]
    assert writer.register_entry == (
        "writes from a service network (limited to objects under capture/; everything else is still denied)"
    )


def test_a_trusted_principal_prefix_must_be_a_key_prefix() -> None:
    with pytest.raises(ValueError, match=r"TrustedPrincipal\.prefix = '/capture': must be a key prefix"):
        TrustedPrincipal(arn="arn:aws:iam::1:role/x", reason="writes capture", prefix="/capture")
    assert prefix_limit_sid("capture/") == "DenyOutsideCapturePrefixWithoutVpcEndpoint"


def test_the_access_log_bucket_keeps_accepting_s3_log_delivery(synth: Synth) -> None:
    statements = _bucket_policy(synth, synth.stacks.data.lake.access_logs)
    assert not [s for s in statements if s.get("Sid") == "DenyOutsideProjectVpcEndpoint"]


# ---------------------------------------------------------------- D4 catalog


def test_raw_table_has_the_dataset_columns_metadata_and_ingest_date_partition(synth: Synth) -> None:
    catalog = synth.stacks.data.catalog
    table = synth.props(catalog.raw_table)["TableInput"]
    storage = table["StorageDescriptor"]
    # The transform stamps the ingest metadata after the dataset's columns, both as JSON strings.
    expected = [
        *dataset_columns(synth.stage.dataset),
        ("_ingest_ts", "string"),
        ("_firehose_record_id", "string"),
    ]
    assert [name for name, _ in expected[-2:]] == list(METADATA_COLUMNS)
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == expected
    assert [c["Name"] for c in storage["Columns"]][: len(synth.stage.dataset.columns)] == list(
        synth.stage.dataset.columns
    )
    assert table["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert flatten(storage["Location"]).endswith(f"/{synth.stage.dataset.name}/")
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["Parameters"]["projection.ingest_date.type"] == "date"
    assert synth.props(catalog.raw_table)["DatabaseName"] == f"rookery_{synth.stage.name}"


def test_numeric_columns_are_doubles_and_the_rest_strings(synth: Synth) -> None:
    columns = dict(dataset_columns(synth.stage.dataset))
    assert {c for c, t in columns.items() if t == "double"} == set(synth.stage.dataset.numeric)


def test_curated_table_is_parquet_in_the_curated_bucket(synth: Synth) -> None:
    data = synth.stacks.data
    table = synth.props(data.catalog.curated_table)["TableInput"]
    storage = table["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert synth.logical_id(data.lake.buckets["curated"]) in flatten(storage["Location"])


def test_catalog_metadata_and_connection_passwords_are_kms_encrypted(synth: Synth) -> None:
    data = synth.stacks.data
    settings = synth.props(data.catalog.encryption)["DataCatalogEncryptionSettings"]
    key = arn_of(synth.logical_id(data.keys.data))
    assert settings["EncryptionAtRest"] == {"CatalogEncryptionMode": "SSE-KMS", "SseAwsKmsKeyId": key}
    assert settings["ConnectionPasswordEncryption"] == {
        "ReturnConnectionPasswordEncrypted": True,
        "KmsKeyId": key,
    }


def test_crawler_runs_with_a_kms_security_configuration_over_the_raw_table(synth: Synth) -> None:
    data = synth.stacks.data
    crawler = synth.props(data.catalog.crawler)
    [config] = resources(synth.data, "AWS::Glue::SecurityConfiguration").items()
    assert crawler["CrawlerSecurityConfiguration"] == ref(config[0])
    encryption = config[1]["Properties"]["EncryptionConfiguration"]
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["KmsKeyArn"] == arn_of(synth.logical_id(data.keys.logs))
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    assert encryption["S3Encryptions"] == [
        {"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": arn_of(synth.logical_id(data.keys.data))}
    ]
    assert crawler["Targets"] == {
        "CatalogTargets": [{"DatabaseName": f"rookery_{synth.stage.name}", "Tables": ["penguins_raw"]}]
    }
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert crawler["Role"] == arn_of(synth.logical_id(data.catalog.crawler_role))


def test_crawler_role_reads_only_the_dataset_prefix_and_updates_only_the_raw_table(synth: Synth) -> None:
    data = synth.stacks.data
    statements = {s["Sid"]: s for s in _role_statements(synth, data.catalog.crawler_role)}
    assert set(statements) == {
        "ListRawDataPrefix",
        "ReadRawDataObjects",
        "UseDataKeyViaS3AndGlue",
        "UpdateRawTablePartitions",
        "WriteEncryptedCrawlerLogs",
    }
    assert flatten(statements["ReadRawDataObjects"]["Resource"]).endswith("/penguins/*")
    assert all("*" not in a for s in statements.values() for a in _as_list(s["Action"]))
    assert flatten(statements["UpdateRawTablePartitions"]["Resource"]).endswith(
        "table/rookery_" + synth.stage.name + "/penguins_raw"
    )
    trust = synth.props(data.catalog.crawler_role)["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "glue.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]


# ---------------------------------------------------------------- D5 Athena


def test_athena_workgroup_enforces_kms_encrypted_results_in_the_artifacts_bucket(synth: Synth) -> None:
    data = synth.stacks.data
    config = synth.props(data.queries.workgroup)["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == QUERY_SCAN_LIMIT_BYTES
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": arn_of(synth.logical_id(data.keys.data)),
    }
    location = flatten(result["OutputLocation"])
    assert location.startswith("s3://") and location.endswith("/athena-results/")
    assert synth.logical_id(data.lake.buckets["artifacts"]) in location
    assert result["ExpectedBucketOwner"] == (synth.stage.account or {"Ref": "AWS::AccountId"})


# ---------------------------------------------------------------- D6 Firehose


def test_firehose_direct_put_with_customer_key_into_the_date_partitioned_raw_prefix(synth: Synth) -> None:
    data = synth.stacks.data
    layout = synth.stage.data.layout
    stream = synth.props(data.ingestion.delivery_stream)
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": arn_of(synth.logical_id(data.keys.data)),
    }
    s3 = stream["ExtendedS3DestinationConfiguration"]
    assert s3["BucketARN"] == arn_of(synth.logical_id(data.lake.buckets["raw"]))
    assert (
        s3["Prefix"]
        == layout.firehose_prefix(synth.stage.dataset)
        == "penguins/ingest_date=!{timestamp:yyyy-MM-dd}/"
    )
    assert s3["ErrorOutputPrefix"] == layout.firehose_error_prefix()
    assert s3["EncryptionConfiguration"] == {
        "KMSEncryptionConfig": {"AWSKMSKeyARN": arn_of(synth.logical_id(data.keys.data))}
    }
    assert s3["BufferingHints"] == {
        "IntervalInSeconds": synth.stage.data.firehose_buffer_seconds,
        "SizeInMBs": synth.stage.data.firehose_buffer_mib,
    }
    assert s3["CloudWatchLoggingOptions"] == {
        "Enabled": True,
        "LogGroupName": ref(synth.logical_id(data.ingestion.log_group)),
        "LogStreamName": ref(synth.logical_id(data.ingestion.log_stream)),
    }
    [processor] = s3["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "Lambda"
    assert parameters["LambdaArn"] == arn_of(synth.logical_id(data.ingestion.transform.function))
    # What the local Firehose emulator batches by, too (emulators.firehose.models).
    assert (parameters["BufferSizeInMBs"], parameters["NumberOfRetries"]) == (
        str(TRANSFORM_BUFFER_MIB),
        str(TRANSFORM_RETRIES),
    )
    assert parameters["BufferIntervalInSeconds"] == str(TRANSFORM_INTERVAL_SECONDS)
    assert s3["CompressionFormat"] == DELIVERY_COMPRESSION == "UNCOMPRESSED"


def test_firehose_role_writes_two_prefixes_uses_the_key_via_s3_and_invokes_only_the_transform(
    synth: Synth,
) -> None:
    data = synth.stacks.data
    statements = {s["Sid"]: s for s in _role_statements(synth, data.ingestion.role)}
    objects = sorted(flatten(r) for r in statements["WriteDeliveredObjects"]["Resource"])
    raw = synth.logical_id(data.lake.buckets["raw"])
    assert objects == [f"<{raw}>/errors/*", f"<{raw}>/penguins/*"]
    assert "kms:ViaService" in statements["EncryptDeliveredObjects"]["Condition"]["StringEquals"]
    assert statements["InvokeTransform"]["Resource"] == arn_of(
        synth.logical_id(data.ingestion.transform.function)
    )
    assert all("*" not in a for s in statements.values() for a in _as_list(s["Action"]))
    assert synth.resource(data.ingestion.delivery_stream)["DependsOn"] == [
        synth.logical_id(data.ingestion.role.node.find_child("DefaultPolicy"))
    ]


# ---------------------------------------------------------------- L1 Lambda


def test_transform_lambda_meets_l1(synth: Synth) -> None:
    network = synth.stacks.network.network
    transform = synth.stacks.data.ingestion.transform
    fn = synth.props(transform.function)
    assert fn["Runtime"] == RUNTIME.name == "python3.14"
    assert fn["Handler"] == "firehose_transform.handler.lambda_handler"
    assert fn["ReservedConcurrentExecutions"] == 5
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["DeadLetterConfig"] == {"TargetArn": arn_of(synth.logical_id(transform.dead_letter_queue))}
    assert fn["LoggingConfig"] == {
        "LogFormat": "JSON",
        "LogGroup": ref(synth.logical_id(transform.log_group)),
    }
    [group] = fn["VpcConfig"]["SecurityGroupIds"]
    assert (
        synth.logical_id(network.workload_security_groups["lambda"])
        in group["Fn::GetStackOutput"]["OutputName"]
    )
    assert len(fn["VpcConfig"]["SubnetIds"]) == synth.stage.max_azs
    log_group = synth.props(transform.log_group)
    assert log_group["RetentionInDays"] == synth.stage.log_retention_days
    assert log_group["KmsKeyId"] == arn_of(synth.logical_id(synth.stacks.data.keys.logs))
    queue = synth.props(transform.dead_letter_queue)
    assert queue["KmsMasterKeyId"] == arn_of(synth.logical_id(synth.stacks.data.keys.data))


def test_transform_environment_carries_the_stage_schema_and_powertools_settings(synth: Synth) -> None:
    env = synth.props(synth.stacks.data.ingestion.transform.function)["Environment"]["Variables"]
    assert env["ROOKERY_DATASET_SCHEMA"] == synth.stage.dataset.to_json()
    assert json.loads(env["ROOKERY_DATASET_SCHEMA"])["target"] == synth.stage.dataset.target
    assert env["POWERTOOLS_SERVICE_NAME"] == "firehose_transform"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == synth.stage.qualifier


def test_transform_role_has_no_managed_policies_and_scoped_statements(synth: Synth) -> None:
    transform = synth.stacks.data.ingestion.transform
    role = synth.props(transform.role)
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    by_sid = {s.get("Sid"): s for s in _role_statements(synth, transform.role)}
    assert flatten(by_sid["EncryptDeadLetters"]["Condition"]["StringEquals"]["kms:ViaService"]).startswith(
        "sqs."
    )
    wildcard = [s for s in _role_statements(synth, transform.role) if s["Resource"] == "*"]
    # Only ENI management and X-Ray, which have no resource-level permissions (acknowledged).
    assert (
        sorted(a.split(":")[0] for s in wildcard for a in _as_list(s["Action"])) == ["ec2"] * 6 + ["xray"] * 2
    )


def test_transform_code_is_bundled_without_docker_into_the_assembly(synth: Synth) -> None:
    fn = synth.props(synth.stacks.data.ingestion.transform.function)
    asset = synth.directory / f"asset.{fn['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset / "firehose_transform" / "handler.py").is_file()
    assert (asset / "rookery_contracts" / "schema.py").is_file()
    assert (asset / "aws_lambda_powertools" / "__init__.py").is_file()
    assert not list(asset.rglob("*.pyc")) and not list(asset.rglob("*.so"))


# ---------------------------------------------------------------- D7 and stacks


def test_stateful_resources_are_retained_unless_dev_deletion_is_explicitly_allowed(any_synth: Synth) -> None:
    expected = "Delete" if any_synth.stage.removal_destroys_data else "Retain"
    for template in (any_synth.network, any_synth.data):
        stateful = {k: r for k, r in template["Resources"].items() if r["Type"] in STATEFUL_RESOURCE_TYPES}
        assert stateful
        for logical_id, resource in stateful.items():
            assert resource["DeletionPolicy"] == expected, logical_id
            assert resource["UpdateReplacePolicy"] == expected, logical_id


def test_only_dev_with_the_flag_empties_buckets_on_delete(any_synth: Synth) -> None:
    auto_delete = resources(any_synth.data, "Custom::S3AutoDeleteObjects")
    if any_synth.stage.removal_destroys_data:
        assert len(auto_delete) == 4
        assert not any_synth.stage.production
        provider_role = [k for k in resources(any_synth.data, "AWS::IAM::Role") if "AutoDeleteObjects" in k]
        assert len(provider_role) == 1
        deny = _vpc_deny(any_synth, any_synth.stacks.data.lake.buckets["raw"])
        assert arn_of(provider_role[0]) in deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    else:
        assert auto_delete == {}


def test_prod_is_termination_protected_and_pinned_to_its_account(prod: Synth) -> None:
    for component in ("Network", "Data"):
        stack = prod.assembly.stack(prod.stage.stack_name(component))
        assert stack.termination_protection is True
        assert stack.environment == f"aws://{prod.stage.account}/{prod.stage.region}"


def test_dev_is_environment_agnostic_and_unprotected(dev: Synth) -> None:
    for component in ("Network", "Data"):
        stack = dev.assembly.stack(dev.stage.stack_name(component))
        assert stack.termination_protection is False
        assert stack.environment == "aws://unknown-account/unknown-region"
