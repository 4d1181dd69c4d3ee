"""``Rookery-<stage>-Data``: keys, the data lake, the catalog, Athena and ingestion (D1, D1b, D3-D7, K1)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Environment, Fn
from constructs import Construct

from infra.constructs.catalog import DataCatalog, QueryWorkgroup
from infra.constructs.data_lake import DataKeys, DataLake, TrustedPrincipal, deployment_role
from infra.constructs.ingestion import IngestionStream
from infra.constructs.keys import KeyUser
from infra.constructs.network import PrivateNetwork
from infra.stacks.base import StageStack
from infra.stacks.stage_props import (
    catalog_props,
    data_keys_props,
    data_lake_props,
    ingestion_props,
    workgroup_props,
)
from stage import Stage
from stage.names import project_role_path


class DataStack(StageStack):
    """Stateful: retained in prod, termination-protected where the stage says so.

    ``trusted_principals`` extends D1b's exception list (e.g. the SageMaker execution role of a
    later stack, by ARN pattern); the deployment role, the Firehose role and the crawler role are
    always on it.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        stage: Stage,
        env: Environment | None,
        network: PrivateNetwork,
        trusted_principals: Sequence[TrustedPrincipal] = (),
    ) -> None:
        super().__init__(
            scope,
            stage=stage,
            component="Data",
            env=env,
            description="encrypted data lake, catalog, Athena and Firehose ingestion",
        )
        self.keys = DataKeys(self, "Keys", props=data_keys_props(stage))
        self.lake = DataLake(
            self,
            "Lake",
            props=data_lake_props(stage, account=self.account, region=self.region),
            keys=self.keys,
        )
        self.catalog = DataCatalog(
            self,
            "Catalog",
            props=catalog_props(stage),
            keys=self.keys,
            raw_bucket=self.lake.buckets["raw"],
            curated_bucket=self.lake.buckets["curated"],
        )
        self.queries = QueryWorkgroup(
            self,
            "Queries",
            props=workgroup_props(stage),
            keys=self.keys,
            results_bucket=self.lake.buckets["artifacts"],
        )
        self.ingestion = IngestionStream(
            self,
            "Ingestion",
            props=ingestion_props(stage),
            keys=self.keys,
            raw_bucket=self.lake.buckets["raw"],
            vpc=network.vpc,
            subnets=network.subnets,
            function_security_group=network.workload_security_groups["lambda"],
        )
        deployer = deployment_role(self)
        self.keys.restrict_use(
            [
                KeyUser(
                    deployer.arn,
                    "CloudFormation creates the stream, notebook and endpoint configs on these keys",
                ),
                KeyUser(self.ingestion.role.role_arn, "Firehose writes the raw bucket with the data key"),
                KeyUser(
                    self.ingestion.transform.role.role_arn,
                    "the transform Lambda's dead-letter queue is encrypted with the data key",
                ),
                KeyUser(self.catalog.crawler_role.role_arn, "the Glue crawler reads the raw bucket"),
                KeyUser(
                    Fn.sub(
                        f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{project_role_path(stage)}*"
                    ),
                    "the ML and Serving stacks' roles (pipeline execution, notebook, endpoint model, "
                    "deployment), named by their IAM path so this stack never references those stacks",
                ),
            ]
        )
        self.lake.restrict_to_vpc_endpoint(
            endpoint_id=network.s3_endpoint.vpc_endpoint_id,
            trusted=[
                deployer,
                TrustedPrincipal(
                    arn=self.ingestion.role.role_arn,
                    reason="Firehose delivers into the raw bucket from the Firehose service network",
                    buckets=("raw",),
                ),
                TrustedPrincipal(
                    arn=self.catalog.crawler_role.role_arn,
                    reason="the Glue crawler reads the raw prefix from the Glue service network",
                    buckets=("raw",),
                ),
                *trusted_principals,
            ],
        )
