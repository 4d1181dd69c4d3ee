"""Controls D4 and D5: the Glue Data Catalog over the lake and the Athena workgroup that queries it.

- A database, a raw table over the JSON records Firehose writes (partitioned by ingest date,
  columns from the dataset schema plus the ingest metadata the transform stamps) and a curated
  Parquet table. The raw table uses partition projection, so Athena sees a new day at once;
  the crawler keeps the catalog's partition list current for other readers.
- The crawler runs with a security configuration (KMS for its logs, bookmarks and S3 output)
  and a role limited to reading the raw bucket and updating these tables.
- Catalog encryption settings: metadata and connection passwords encrypted with the data key.
  These settings are per account and region; two stages in one account and region share them.
- The Athena workgroup enforces its configuration: results go KMS-encrypted into the
  artifacts bucket under ``athena-results/``, with a per-query scan limit.

None of the encryption is optional; ``CatalogProps`` and ``WorkgroupProps`` carry names, the dataset
and its layout, retention, the scan limit and whether the workgroup may be deleted with its queries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import Aws, CfnResource, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from infra.audit.acknowledge import acknowledge, acknowledge_inline_policy
from infra.constructs.data_lake import DataKeys
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.props import PropsError, check_qualifier, check_retention
from rookery_contracts.ingest import METADATA_COLUMNS
from stage.model import DataLayout, DatasetSchema
from stage.names import ATHENA_RESULTS_PREFIX

CRAWLER_SCHEDULE: Final = "cron(30 0 * * ? *)"  # daily, after the day's partition is complete
QUERY_SCAN_LIMIT_BYTES: Final = 10 * 1024**3  # a runaway query stops at 10 GiB
# Athena's smallest per-query cutoff (BytesScannedCutoffPerQuery).
MIN_QUERY_SCAN_LIMIT_BYTES: Final = 10_000_000
# Database, table and column names Athena can query: lower case, digits and '_'.
_GLUE_NAME: Final = re.compile(r"^[a-z0-9_]{1,255}$")
_ATHENA_WORKGROUP: Final = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")


def dataset_columns(dataset: DatasetSchema) -> list[tuple[str, str]]:
    """(name, Glue type) of every dataset column, in the order records carry them."""
    types = {c: "double" for c in dataset.numeric}
    return [(c, types.get(c, "string")) for c in dataset.columns]


@dataclass(frozen=True, kw_only=True)
class CatalogProps:
    """The catalog's names and the dataset it describes."""

    qualifier: str
    stage_label: str  # how descriptions name the stage, e.g. "rookery dev"
    dataset: DatasetSchema
    layout: DataLayout = field(default_factory=DataLayout)
    database_name: str
    raw_table_name: str
    curated_table_name: str
    crawler_name: str
    security_configuration_name: str
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of the crawler's (KMS-encrypted) logs."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        for name in ("database_name", "raw_table_name", "curated_table_name"):
            if not _GLUE_NAME.match(getattr(self, name)):
                raise PropsError(
                    self, name, "Athena reads only lower-case letters, digits and '_'; e.g. 'penguins_raw'"
                )
        if self.raw_table_name == self.curated_table_name:
            raise PropsError(
                self, "curated_table_name", "equals raw_table_name; give the two tables distinct names"
            )
        if not self.crawler_name:
            raise PropsError(self, "crawler_name", "name the crawler, e.g. 'rookery-dev-penguins-raw'")
        if not self.security_configuration_name:
            raise PropsError(
                self,
                "security_configuration_name",
                "name the Glue security configuration, e.g. 'rookery-dev-catalog'",
            )
        check_retention(self)


@dataclass(frozen=True, kw_only=True)
class WorkgroupProps:
    name: str
    stage_label: str  # how descriptions name the stage, e.g. "rookery dev"
    scan_limit_bytes: int = QUERY_SCAN_LIMIT_BYTES
    """Secure default: a query that would scan more than 10 GiB is cancelled (cost guardrail)."""
    destroy_on_delete: bool = False
    """Secure default: CloudFormation does not delete a workgroup that holds named queries. True
    deletes them with it; only a stage that allows deletion, with ``-c destroy_data=true``."""

    def __post_init__(self) -> None:
        if not _ATHENA_WORKGROUP.match(self.name):
            raise PropsError(self, "name", "1-128 letters, digits, '.', '_' or '-'; e.g. 'rookery-dev'")
        if self.scan_limit_bytes < MIN_QUERY_SCAN_LIMIT_BYTES:
            raise PropsError(
                self,
                "scan_limit_bytes",
                f"Athena's smallest per-query cutoff is {MIN_QUERY_SCAN_LIMIT_BYTES} bytes; raise it",
            )


class DataCatalog(Construct):
    """Glue database, tables, crawler and catalog encryption. Exposes names and ``crawler_role``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: CatalogProps,
        keys: DataKeys,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        dataset = props.dataset
        layout = props.layout
        self.database_name = props.database_name
        self.raw_table_name = props.raw_table_name
        self.curated_table_name = props.curated_table_name
        partition = [glue.CfnTable.ColumnProperty(name=layout.partition_key, type="string")]
        columns = [glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in dataset_columns(dataset)]
        # The ingest metadata the transform stamps on every record: JSON strings, after the dataset's columns.
        metadata = [glue.CfnTable.ColumnProperty(name=n, type="string") for n in METADATA_COLUMNS]
        raw_location = raw_bucket.s3_url_for_object(layout.data_prefix(dataset))
        key = layout.partition_key

        self.encryption = glue.CfnDataCatalogEncryptionSettings(
            self,
            "CatalogEncryption",
            catalog_id=stack.account,
            data_catalog_encryption_settings=glue.CfnDataCatalogEncryptionSettings.DataCatalogEncryptionSettingsProperty(
                encryption_at_rest=glue.CfnDataCatalogEncryptionSettings.EncryptionAtRestProperty(
                    catalog_encryption_mode="SSE-KMS", sse_aws_kms_key_id=keys.data.key_arn
                ),
                connection_password_encryption=glue.CfnDataCatalogEncryptionSettings.ConnectionPasswordEncryptionProperty(
                    return_connection_password_encrypted=True, kms_key_id=keys.data.key_arn
                ),
            ),
        )
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description=f"{props.stage_label}: the {dataset.name} data lake"
            ),
        )
        self.raw_table = glue.CfnTable(
            self,
            "RawTable",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.raw_table_name,
                description=f"{dataset.name} records as ingested (JSON lines, validated by the transform)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    f"projection.{layout.partition_key}.type": "date",
                    f"projection.{layout.partition_key}.format": "yyyy-MM-dd",
                    f"projection.{layout.partition_key}.range": "2020-01-01,NOW",
                    f"projection.{layout.partition_key}.interval": "1",
                    f"projection.{layout.partition_key}.interval.unit": "DAYS",
                    "storage.location.template": f"{raw_location}{key}=${{{key}}}/",
                },
                partition_keys=partition,
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[*columns, *metadata],
                    location=raw_location,
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe"
                    ),
                ),
            ),
        )
        self.raw_table.node.add_dependency(self.database)
        self.curated_table = glue.CfnTable(
            self,
            "CuratedTable",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.curated_table_name,
                description=f"{dataset.name} records, typed and deduplicated (Parquet)",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "parquet", "parquet.compression": "SNAPPY"},
                partition_keys=partition,
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns,
                    location=curated_bucket.s3_url_for_object(layout.data_prefix(dataset)),
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        self.curated_table.node.add_dependency(self.database)

        self.security_configuration_name = props.security_configuration_name
        security = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=self.security_configuration_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=keys.logs.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=keys.data.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=keys.data.key_arn
                    )
                ],
            ),
        )
        self.crawler_role = iam.Role(
            self,
            "CrawlerRole",
            assumed_by=iam.ServicePrincipal(
                "glue.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"{props.qualifier}: Glue crawler keeping the raw table's partitions current",
        )
        data_prefix = layout.data_prefix(dataset)
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="ListRawDataPrefix",
                actions=["s3:ListBucket"],
                resources=[raw_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [data_prefix, f"{data_prefix}*"]}},
            )
        )
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRawDataObjects",
                actions=["s3:GetObject"],
                resources=[raw_bucket.arn_for_objects(f"{data_prefix}*")],
            )
        )
        # The raw objects and the catalog itself are encrypted with the data key.
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="UseDataKeyViaS3AndGlue",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[keys.data.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"s3.{stack.region}.amazonaws.com",
                            f"glue.{stack.region}.amazonaws.com",
                        ]
                    }
                },
            )
        )
        catalog_arn = stack.format_arn(service="glue", resource="catalog")
        database_arn = stack.format_arn(service="glue", resource="database", resource_name=self.database_name)
        table_arn = stack.format_arn(
            service="glue", resource="table", resource_name=f"{self.database_name}/{self.raw_table_name}"
        )
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="UpdateRawTablePartitions",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                    "glue:CreatePartition",
                    "glue:BatchCreatePartition",
                    "glue:UpdatePartition",
                    "glue:BatchUpdatePartition",
                    "glue:UpdateTable",
                ],
                resources=[catalog_arn, database_arn, table_arn],
            )
        )
        # Glue names the log group of an encrypted crawler after its role and security configuration;
        # creating it here sets its key and retention instead of Glue's defaults (never expire).
        log_group_name = (
            f"/aws-glue/crawlers-role/{self.crawler_role.role_name}-{self.security_configuration_name}"
        )
        self.crawler_log_group = encrypted_log_group(
            self, "CrawlerLogGroup", key=keys.logs, days=props.log_retention_days, name=log_group_name
        )
        self.crawler_role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteEncryptedCrawlerLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                # Pseudo parameters (not format_arn) keep the ARN, and so the acknowledgment
                # below, identical in environment-agnostic and pinned stages.
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}:*"
                ],
            )
        )
        self.crawler = glue.CfnCrawler(
            self,
            "Crawler",
            name=props.crawler_name,
            role=self.crawler_role.role_arn,
            description=f"adds new {layout.partition_key} partitions of {self.raw_table_name}",
            targets=glue.CfnCrawler.TargetsProperty(
                catalog_targets=[
                    glue.CfnCrawler.CatalogTargetProperty(
                        database_name=self.database_name, tables=[self.raw_table_name]
                    )
                ]
            ),
            # With catalog targets the table definition stays the config's; the crawler only logs drift.
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
            crawler_security_configuration=security.ref,
            configuration=json.dumps(
                {
                    "Version": 1.0,
                    "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
                },
                sort_keys=True,
            ),
            schedule=glue.CfnCrawler.ScheduleProperty(schedule_expression=CRAWLER_SCHEDULE),
        )
        self.crawler.node.add_dependency(self.raw_table)
        policy = self.crawler_role.node.find_child("DefaultPolicy")
        acknowledge_inline_policy(
            self.crawler_role,
            "the crawler role's policy is written for this role alone: read the raw prefix, use the data key "
            "via S3 and Glue, update one table's partitions, write its own log group",
        )
        acknowledge(
            policy,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(raw_bucket))}.Arn>/{data_prefix}*]",
            "the crawler reads every object under the dataset prefix; Firehose names them at delivery time",
        )
        acknowledge(
            policy,
            "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:"
            f"log-group:/aws-glue/crawlers-role/<{stack.get_logical_id(_cfn(self.crawler_role))}>-"
            f"{self.security_configuration_name}:*]",
            "the crawler creates one log stream per run in its own log group; Glue chooses stream names",
        )


def _cfn(construct: IConstruct) -> CfnResource:
    child = construct.node.default_child
    assert isinstance(child, CfnResource)
    return child


class QueryWorkgroup(Construct):
    """D5: the stage's Athena workgroup. Exposes ``workgroup``, ``name`` and ``results_location``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: WorkgroupProps,
        keys: DataKeys,
        results_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.name = props.name
        self.results_location = results_bucket.s3_url_for_object(ATHENA_RESULTS_PREFIX)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.name,
            description=f"{props.stage_label}: queries over the data lake (results KMS-encrypted)",
            state="ENABLED",
            recursive_delete_option=props.destroy_on_delete,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=props.scan_limit_bytes,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version="AUTO"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results_location,
                    expected_bucket_owner=stack.account,
                    acl_configuration=athena.CfnWorkGroup.AclConfigurationProperty(
                        s3_acl_option="BUCKET_OWNER_FULL_CONTROL"
                    ),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=keys.data.key_arn
                    ),
                ),
            ),
        )
