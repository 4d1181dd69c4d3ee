"""Control M1: the endpoint's data-quality and model-quality monitoring, inside the perimeter.

Both kinds run the project image as a custom Model Monitor container (``monitor.py``), on a
schedule, with the same perimeter as every pipeline job: the stage's private subnets and a security
group without ingress, network isolation, inter-container traffic encryption, the artifacts key on
the volume and the reports. Which resource each kind uses, and why:

- **data quality**: an ``AWS::SageMaker::MonitoringSchedule`` with an inline
  ``MonitoringJobDefinition``, whose ``MonitoringAppSpecification`` takes a custom image, entrypoint
  and arguments: SageMaker's documented path for a custom ("bring your own") monitoring container;
- **model quality**: an ``AWS::SageMaker::ModelQualityJobDefinition`` (``ImageUri`` = the project
  image) with a schedule naming it, because only the job definition takes a ``GroundTruthS3Input``:
  SageMaker merges the ground-truth prefix into the captured records before the container runs, so
  the job needs no network to find its labels (an inline definition would). Every property of a job
  definition is immutable: a new baseline replaces it, so CloudFormation names it (it cannot replace
  a resource with a fixed name) and the schedule follows the new one by its ARN.

The baseline comes from the deployed version's ``DriftCheckBaselines``: ``baseline_uri`` (the
Serving stack's ``MonitoringBaselineUri`` parameter) is the Baseline step's output prefix, under
which the files have fixed names. An alarm watches each schedule's violation count and notifies the
monitoring topic (encrypted with a key of its own that CloudWatch may use); where the stage's reaction
is ``retrain``, the ML stack's trigger also reacts to the alarms, by their stage-derived names
(``infra.constructs.trigger``). Every resource exists
only under ``condition``, like the endpoint it watches. Props that would break the perimeter are
refused before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import ArnFormat, CfnCondition, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.audit.acknowledge import acknowledge_inline_policy
from infra.constructs.data_lake import TrustedPrincipal
from infra.constructs.keys import deny_grants_not_for_aws_resources
from infra.constructs.policies import Grant, attach
from infra.constructs.props import (
    PropsError,
    check_prefix,
    check_qualifier,
    check_role_path,
    role_path_problem,
)
from infra.constructs.sagemaker_grants import (
    container_log_grants,
    image_pull_grants,
    sagemaker_metrics_grant,
    vpc_network_grants,
)
from rookery_contracts import monitoring as mon
from rookery_contracts.env import DATASET_SCHEMA_ENV

# SageMaker writes a processing job's container logs here (monitoring jobs are processing jobs).
PROCESSING_LOG_GROUP: Final = "/aws/sagemaker/ProcessingJobs"
# Monitoring schedules run one instance per job.
INSTANCE_COUNT: Final = 1


@dataclass(frozen=True, kw_only=True)
class MonitoringProps:
    """What the monitoring jobs watch and how; the perimeter flags are secure defaults that cannot be
    turned off (props that try are refused)."""

    qualifier: str
    role_path: str
    endpoint_name: str
    schedule_names: dict[str, str]  # by kind (rookery_contracts.monitoring.MONITOR_KINDS)
    alarm_names: dict[str, str]  # by kind
    topic_name: str
    schedule_expression: str
    period_seconds: int  # the schedule's period: one alarm datapoint per job
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    dataset_schema_json: str
    capture_prefix: str
    ground_truth_prefix: str
    results_prefix: str
    baselines_prefix: str  # artifacts-bucket prefix the Baseline step writes under (the pipeline's)
    network_isolation: bool = True
    inter_container_encryption: bool = True

    def __post_init__(self) -> None:
        check_qualifier(self)
        check_role_path(self)
        for field in ("capture_prefix", "ground_truth_prefix", "results_prefix", "baselines_prefix"):
            check_prefix(self, field)
        if not self.network_isolation:
            raise PropsError(
                self,
                "network_isolation",
                "monitoring jobs read S3 only through SageMaker's channels and need no network (control "
                "M1); keep network isolation on",
            )
        if not self.inter_container_encryption:
            raise PropsError(
                self,
                "inter_container_encryption",
                "control M1 requires inter-container traffic encryption on every monitoring job; keep it on",
            )
        for field in ("schedule_names", "alarm_names"):
            kinds = set(getattr(self, field))
            if kinds != set(mon.MONITOR_KINDS):
                raise PropsError(self, field, f"must name exactly the kinds {list(mon.MONITOR_KINDS)}")
        if self.max_runtime_seconds > self.period_seconds:
            raise PropsError(
                self,
                "max_runtime_seconds",
                f"a job may not outlast the schedule's period ({self.period_seconds} s); lower it",
            )


def monitoring_exception(role_path: str) -> TrustedPrincipal:
    """D1b: SageMaker stages a monitoring job's inputs and uploads its reports from its own network."""
    problem = role_path_problem(role_path)
    if problem:
        raise ValueError(f"role_path = {role_path!r}: {problem}")
    return TrustedPrincipal(
        arn=Fn.sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{role_path}*"),
        reason=(
            "the monitoring jobs' role (matched by its IAM path): SageMaker downloads the captured "
            "records, ground truth and baseline and uploads the reports from the SageMaker service "
            "network, so the requests never carry the project's aws:SourceVpce; the role's own policy "
            "limits it to the capture, ground-truth, pipeline and monitoring prefixes"
        ),
        buckets=("raw", "artifacts"),
    )


def monitoring_grants(
    stack: Stack,
    props: MonitoringProps,
    *,
    raw: s3.IBucket,
    artifacts: s3.IBucket,
    data_key: kms.IKey,
    artifacts_key: kms.IKey,
    repository: ecr.IRepository,
    vpc_id: str,
) -> list[Grant]:
    """Every statement of the monitoring role, with its reason."""
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{stack.region}.{stack.url_suffix}"}}
    log_group = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=PROCESSING_LOG_GROUP,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    reading = [
        Grant(
            "ReadCaptureAndGroundTruth",
            ("s3:GetObject",),
            (
                raw.arn_for_objects(f"{props.capture_prefix}*"),
                raw.arn_for_objects(f"{props.ground_truth_prefix}*"),
            ),
            "a job reads the window's captured records and the ground truth uploaded for them",
        ),
        Grant(
            "ListCaptureAndGroundTruth",
            ("s3:ListBucket",),
            (raw.bucket_arn,),
            "SageMaker lists the window's capture and ground-truth folders before it downloads them",
            {"StringLike": {"s3:prefix": [f"{props.capture_prefix}*", f"{props.ground_truth_prefix}*"]}},
        ),
        Grant(
            "DecryptCapture",
            ("kms:Decrypt",),
            (data_key.key_arn,),
            "captured records and ground truth are encrypted with the data key; decrypted only by S3",
            via_s3,
        ),
        Grant(
            "ReadBaseline",
            ("s3:GetObject",),
            (artifacts.arn_for_objects(f"{props.baselines_prefix}*"),),
            "the baseline is the Baseline step's output under the pipeline's prefix of the artifacts bucket",
        ),
        Grant(
            "WriteReports",
            ("s3:PutObject", "s3:AbortMultipartUpload"),
            (artifacts.arn_for_objects(f"{props.results_prefix}*"),),
            "a job uploads its statistics, violations and report under the monitoring prefix",
        ),
        Grant(
            "UseArtifactsKey",
            ("kms:Decrypt", "kms:GenerateDataKey"),
            (artifacts_key.key_arn,),
            "the baseline and the reports are encrypted with the artifacts key, by S3 only",
            via_s3,
        ),
    ]
    return [
        *image_pull_grants(repository, runs="the monitoring jobs run"),
        *reading,
        *container_log_grants(
            "Processing",
            log_group,
            group_reason=f"SageMaker writes a monitoring job's container logs to {PROCESSING_LOG_GROUP}",
            streams_reason="one log stream per job; job names carry the execution time and do not exist "
            "beforehand",
        ),
        sagemaker_metrics_grant("MonitoringMetrics"),
        *vpc_network_grants(
            stack,
            vpc_id,
            sid="Job",
            attach_reason="a job in the VPC attaches network interfaces whose ids do not exist before it "
            "starts; the ec2:Vpc condition keeps them in the stage's VPC",
        ),
    ]


class EndpointMonitoring(Construct):
    """Exposes ``role``, ``schedules`` and ``alarms`` (by kind), ``quality_job_definition``, ``topic``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: MonitoringProps,
        condition: CfnCondition,
        baseline_uri: str,
        image_uri: str,
        raw_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        data_key: kms.IKey,
        artifacts_key: kms.IKey,
        image_repository: ecr.IRepository,
        vpc: ec2.IVpc,
        subnets: list[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        boundary: iam.IManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            path=props.role_path,
            description=f"{props.qualifier}: execution role of the {props.endpoint_name} monitoring jobs",
            permissions_boundary=boundary,
        )
        self.grants = monitoring_grants(
            stack,
            props,
            raw=raw_bucket,
            artifacts=artifacts_bucket,
            data_key=data_key,
            artifacts_key=artifacts_key,
            repository=image_repository,
            vpc_id=vpc.vpc_id,
        )
        attach(self.role, self.grants)
        acknowledge_inline_policy(
            self.role,
            "the monitoring role's policy is written for this role alone (its image, prefixes, keys and "
            "log group); a managed copy could be attached elsewhere",
        )
        ms, mq = sagemaker.CfnMonitoringSchedule, sagemaker.CfnModelQualityJobDefinition
        security_group_ids = [security_group.security_group_id]
        subnet_ids = [s.subnet_id for s in subnets]
        environment = {
            DATASET_SCHEMA_ENV: props.dataset_schema_json,
            mon.PUBLISH_METRICS_ENV: mon.METRICS_ENABLED,
        }

        def baseline(kind: str, name: str) -> str:
            return Fn.join("/", [baseline_uri, mon.baseline_file(kind, name)])

        def results(kind: str) -> str:
            return artifacts_bucket.s3_url_for_object(f"{props.results_prefix}{kind}")

        data_kind, quality_kind = mon.DATA_QUALITY, mon.MODEL_QUALITY
        data_schedule = ms(
            self,
            "DataQualitySchedule",
            monitoring_schedule_name=props.schedule_names[data_kind],
            monitoring_schedule_config=ms.MonitoringScheduleConfigProperty(
                schedule_config=ms.ScheduleConfigProperty(schedule_expression=props.schedule_expression),
                monitoring_job_definition=ms.MonitoringJobDefinitionProperty(
                    baseline_config=ms.BaselineConfigProperty(
                        constraints_resource=ms.ConstraintsResourceProperty(
                            s3_uri=baseline(data_kind, mon.CONSTRAINTS_FILE)
                        ),
                        statistics_resource=ms.StatisticsResourceProperty(
                            s3_uri=baseline(data_kind, mon.STATISTICS_FILE)
                        ),
                    ),
                    environment=environment,
                    monitoring_app_specification=ms.MonitoringAppSpecificationProperty(
                        image_uri=image_uri,
                        container_entrypoint=list(mon.MONITOR_ENTRYPOINT),
                        container_arguments=[data_kind],
                    ),
                    monitoring_inputs=[
                        ms.MonitoringInputProperty(
                            endpoint_input=ms.EndpointInputProperty(
                                endpoint_name=props.endpoint_name,
                                local_path=mon.ENDPOINT_INPUT_PATH,
                                s3_input_mode="File",
                                s3_data_distribution_type="FullyReplicated",
                            )
                        )
                    ],
                    monitoring_output_config=ms.MonitoringOutputConfigProperty(
                        kms_key_id=artifacts_key.key_arn,
                        monitoring_outputs=[
                            ms.MonitoringOutputProperty(
                                s3_output=ms.S3OutputProperty(
                                    local_path=mon.RESULT_PATH,
                                    s3_uri=results(data_kind),
                                    s3_upload_mode="EndOfJob",
                                )
                            )
                        ],
                    ),
                    monitoring_resources=ms.MonitoringResourcesProperty(
                        cluster_config=ms.ClusterConfigProperty(
                            instance_count=INSTANCE_COUNT,
                            instance_type=props.instance_type,
                            volume_size_in_gb=props.volume_size_gb,
                            volume_kms_key_id=artifacts_key.key_arn,
                        )
                    ),
                    network_config=ms.NetworkConfigProperty(
                        enable_network_isolation=props.network_isolation,
                        enable_inter_container_traffic_encryption=props.inter_container_encryption,
                        vpc_config=ms.VpcConfigProperty(
                            security_group_ids=security_group_ids, subnets=subnet_ids
                        ),
                    ),
                    role_arn=self.role.role_arn,
                    stopping_condition=ms.StoppingConditionProperty(
                        max_runtime_in_seconds=props.max_runtime_seconds
                    ),
                ),
            ),
        )
        self.quality_job_definition = mq(
            self,
            "ModelQualityJobDefinition",
            model_quality_app_specification=mq.ModelQualityAppSpecificationProperty(
                image_uri=image_uri,
                container_entrypoint=list(mon.MONITOR_ENTRYPOINT),
                container_arguments=[quality_kind],
                environment=environment,
                problem_type="BinaryClassification",
            ),
            model_quality_baseline_config=mq.ModelQualityBaselineConfigProperty(
                constraints_resource=mq.ConstraintsResourceProperty(
                    s3_uri=baseline(quality_kind, mon.CONSTRAINTS_FILE)
                )
            ),
            model_quality_job_input=mq.ModelQualityJobInputProperty(
                endpoint_input=mq.EndpointInputProperty(
                    endpoint_name=props.endpoint_name,
                    local_path=mon.ENDPOINT_INPUT_PATH,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                    probability_attribute="probability",
                ),
                ground_truth_s3_input=mq.MonitoringGroundTruthS3InputProperty(
                    s3_uri=raw_bucket.s3_url_for_object(props.ground_truth_prefix.rstrip("/"))
                ),
            ),
            model_quality_job_output_config=mq.MonitoringOutputConfigProperty(
                kms_key_id=artifacts_key.key_arn,
                monitoring_outputs=[
                    mq.MonitoringOutputProperty(
                        s3_output=mq.S3OutputProperty(
                            local_path=mon.RESULT_PATH,
                            s3_uri=results(quality_kind),
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=mq.MonitoringResourcesProperty(
                cluster_config=mq.ClusterConfigProperty(
                    instance_count=INSTANCE_COUNT,
                    instance_type=props.instance_type,
                    volume_size_in_gb=props.volume_size_gb,
                    volume_kms_key_id=artifacts_key.key_arn,
                )
            ),
            network_config=mq.NetworkConfigProperty(
                enable_network_isolation=props.network_isolation,
                enable_inter_container_traffic_encryption=props.inter_container_encryption,
                vpc_config=mq.VpcConfigProperty(security_group_ids=security_group_ids, subnets=subnet_ids),
            ),
            role_arn=self.role.role_arn,
            stopping_condition=mq.StoppingConditionProperty(max_runtime_in_seconds=props.max_runtime_seconds),
        )
        quality_schedule = ms(
            self,
            "ModelQualitySchedule",
            monitoring_schedule_name=props.schedule_names[quality_kind],
            monitoring_schedule_config=ms.MonitoringScheduleConfigProperty(
                schedule_config=ms.ScheduleConfigProperty(schedule_expression=props.schedule_expression),
                # The name CloudFormation gave it: the last part of its ARN (.../<name>).
                monitoring_job_definition_name=Fn.select(
                    1, Fn.split("/", self.quality_job_definition.attr_job_definition_arn)
                ),
                monitoring_type="ModelQuality",
            ),
        )
        self.schedules = {data_kind: data_schedule, quality_kind: quality_schedule}
        self.topic_key = kms.Key(
            self,
            "TopicKey",
            description=f"{props.qualifier}: the monitoring topic's messages",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.topic_key.add_to_resource_policy(deny_grants_not_for_aws_resources())
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic = sns.Topic(
            self, "Topic", topic_name=props.topic_name, master_key=self.topic_key, enforce_ssl=True
        )
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for kind in self.schedules:
            self.alarms[kind] = cloudwatch.CfnAlarm(
                self,
                "DataQualityAlarm" if kind == data_kind else "ModelQualityAlarm",
                alarm_name=props.alarm_names[kind],
                alarm_description=(
                    f"{kind} monitoring of {props.endpoint_name} found violations (see the job's "
                    f"constraint_violations.json under s3://<artifacts>/{props.results_prefix}{kind}/)"
                ),
                namespace=mon.kind_namespace(kind),
                metric_name=mon.VIOLATIONS_METRIC,
                dimensions=[
                    cloudwatch.CfnAlarm.DimensionProperty(
                        name=mon.ENDPOINT_DIMENSION, value=props.endpoint_name
                    ),
                    cloudwatch.CfnAlarm.DimensionProperty(
                        name=mon.SCHEDULE_DIMENSION, value=props.schedule_names[kind]
                    ),
                ],
                statistic="Maximum",
                period=props.period_seconds,
                evaluation_periods=1,
                threshold=0,
                comparison_operator="GreaterThanThreshold",
                # A window without traffic or ground truth publishes no violation count: not a breach.
                treat_missing_data="notBreaching",
                alarm_actions=[self.topic.topic_arn],
                ok_actions=[self.topic.topic_arn],
            )
        for resource in (
            data_schedule,
            self.quality_job_definition,
            quality_schedule,
            *self.alarms.values(),
        ):
            resource.cfn_options.condition = condition
