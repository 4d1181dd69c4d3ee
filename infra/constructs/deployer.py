"""Control H5: deploy on approval, with CloudFormation as the only writer of the endpoint.

- An EventBridge rule on the registry's "SageMaker Model Package State Change" events of the stage's
  group, Approved and Rejected only, starts the deployer with bounded retries and a KMS-encrypted
  dead-letter queue.
- The deployer is a STANDARD Step Functions state machine (a blue/green update with provisioning
  and bake outlasts a Lambda's 15 minutes), logging ALL to a KMS-encrypted log group, traced with
  X-Ray. Its tasks are small Lambdas (``lambdas/model_deployer``, one function and role per task):
  decide -> update -> poll (until the update it started, followed by its request token, leaves
  ``*_IN_PROGRESS``) -> verify -> publish, with
  Wait states between looks at a busy or updating stack. Every loop is bounded (``limits`` in the
  state, from the stage's deployment policy) and the execution has a timeout above their sum. Why
  duplicates, stale events and racing executions converge is in ``model_deployer``'s docstring.
- The functions change the endpoint only through ``UpdateStack`` on the stack the deployer lives in
  (the Serving stack; previous template, the model parameter and the monitoring baseline parameter
  set together, other parameters kept), and only with ``DeploymentRole``: a CloudFormation service
  role trusted by CloudFormation of this account alone and scoped to the Serving stack's resources,
  its monitoring schedules included (``deployment_grants``). Nothing here may call an API that
  changes an endpoint directly.

The tasks' functions and roles, the rule, its queue, the state machine, its log group and the
deployment role are all exposed (see ``ModelDeployer``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from aws_cdk import ArnFormat, Aws, CfnParameter, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_inline_policy
from infra.constructs.function import FunctionProps, ProjectFunction
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.policies import Grant, attach
from infra.constructs.props import PropsError, check_qualifier, check_retention, check_role_path
from infra.constructs.rule_dead_letters import dead_lettered_rule
from rookery_contracts.deployer import (
    ERROR_KEY,
    EXECUTION_KEY,
    LIMITS_KEY,
    NEXT_KEY,
    STARTED_KEY,
    TRIGGER_KEY,
    Limit,
    Next,
    Task,
)
from rookery_contracts.deployment import APPROVED, REJECTED
from rookery_contracts.env import (
    BASELINE_PARAMETER_ENV,
    DEPLOYMENT_EVENT_SOURCE_ENV,
    DEPLOYMENT_EVENT_TYPE_ENV,
    DEPLOYMENT_METRIC_NAMESPACE_ENV,
    DEPLOYMENT_ROLE_ENV,
    ENDPOINT_NAME_ENV,
    MODEL_PACKAGE_GROUP_ENV,
    MODEL_PARAMETER_ENV,
    SERVING_STACK_ENV,
    VARIANT_NAME_ENV,
)

DEPLOYER: Final = "model_deployer"
# What SageMaker sends when a model package version's approval changes.
APPROVAL_SOURCE: Final = "aws.sagemaker"
APPROVAL_DETAIL_TYPE: Final = "SageMaker Model Package State Change"
# What CloudFormation needs to create, change, tag and remove an alarm of the Serving stack.
ALARM_MANAGEMENT: Final = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
    "cloudwatch:ListTagsForResource",
)
# A couple of executions at once (an approval while another deploys) never need more.
TASK_CONCURRENCY: Final = 2
# A task's own error (an AWS error it cannot classify) is retried this often before it is published.
TASK_RETRIES: Final = 2
# Time the tasks themselves may take in one execution, on top of every wait (Lambda calls, retries).
TASK_ALLOWANCE: Final = Duration.minutes(15)
# The CloudFormation service principal, and Application Auto Scaling's role for SageMaker variants.
CLOUDFORMATION: Final = "cloudformation.amazonaws.com"
SAGEMAKER: Final = "sagemaker.amazonaws.com"
SCALING_SERVICE: Final = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE: Final = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
_NO_RESOURCE_LEVEL: Final = "supports no resource-level permissions, so the resource must be '*'"
_GENERATED_NAMES: Final = (
    "CloudFormation generates the names of the Serving stack's model and endpoint config (a model swap "
    "replaces both, so they cannot keep a fixed name); the stage's tags, which every resource of the stack "
    "carries, scope them instead"
)


@dataclass(frozen=True, kw_only=True)
class DeployerProps:
    """The deployer's names, the endpoint it deploys to and the bounds of its waits."""

    qualifier: str
    name: str  # the state machine's name, and the prefix of its functions' names
    rule_name: str  # named, so the queue key's policy can name the one rule that may use it
    model_package_group: str
    endpoint_name: str
    variant_name: str
    rollback_alarm_names: tuple[str, ...]  # the alarms the endpoint's deployment config names
    serving_role_path: str  # IAM path of the endpoint's model role: the only role the stack may pass
    deployment_role_path: str  # IAM path of the CloudFormation service role
    resource_tags: Mapping[str, str]  # tags every resource of the stack carries (CloudFormation passes them)
    event_source: str
    event_type: str
    metric_namespace: str
    update_seconds: int  # the longest one stack update may run (``DeploymentPolicy.update_seconds``)
    # The endpoint's monitoring, which the stack creates, moves or removes with the baseline parameter:
    # the schedules' and alarms' names and the monitoring role's IAM path (all empty: no monitoring).
    monitoring_schedule_names: tuple[str, ...] = ()
    monitoring_alarm_names: tuple[str, ...] = ()
    monitoring_role_path: str | None = None
    wait_seconds: int = 30  # between two looks at a busy or updating stack
    max_deployments: int = 3  # stack updates one execution may start while it converges
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of the state machine's and the functions' (KMS-encrypted) logs."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        for name in ("name", "rule_name", "model_package_group", "endpoint_name", "variant_name"):
            if not getattr(self, name):
                raise PropsError(self, name, "name it (the stage's names come from stage.names)")
        if len(self.name) > 50:
            raise PropsError(
                self, "name", "at most 50 characters, so '<name>-<task>' is a valid function name"
            )
        if not self.rollback_alarm_names:
            raise PropsError(
                self, "rollback_alarm_names", "pass the rollback alarms' names: the stack updates them"
            )
        check_role_path(self, "serving_role_path")
        check_role_path(self, "deployment_role_path")
        monitoring = (self.monitoring_schedule_names, self.monitoring_alarm_names, self.monitoring_role_path)
        if any(monitoring) and not all(monitoring):
            raise PropsError(
                self,
                "monitoring_role_path",
                "name the monitoring schedules, their alarms and the monitoring role's path together, or "
                "none of them (a stage without monitoring)",
            )
        if self.monitoring_role_path is not None:
            check_role_path(self, "monitoring_role_path")
        if self.serving_role_path == self.deployment_role_path:
            raise PropsError(
                self,
                "deployment_role_path",
                "must differ from serving_role_path: the deployment role may pass the model role, not itself",
            )
        if not self.resource_tags:
            raise PropsError(
                self, "resource_tags", "pass the stage's tags (stage.names.stage_tags): they scope the role"
            )
        if not 5 <= self.wait_seconds <= 300:
            raise PropsError(self, "wait_seconds", "look at the stack every 5 to 300 seconds")
        if self.update_seconds < self.wait_seconds:
            raise PropsError(
                self,
                "update_seconds",
                f"at least wait_seconds ({self.wait_seconds}): an update takes minutes",
            )
        if self.max_deployments < 1:
            raise PropsError(self, "max_deployments", "an execution must be able to deploy once")
        if self.event_source.startswith("aws.") or not self.event_source:
            raise PropsError(self, "event_source", "the project's own source, e.g. 'rookery.deployer'")
        if not self.event_type or not self.metric_namespace or self.metric_namespace.startswith("AWS/"):
            raise PropsError(
                self,
                "metric_namespace",
                "the project's own namespace (not 'AWS/...'), e.g. 'Rookery/Deployments'",
            )
        check_retention(self)

    @property
    def checks(self) -> int:
        """How often a busy or updating stack is looked at before the deployer gives up."""
        return math.ceil(self.update_seconds / self.wait_seconds)

    @property
    def limits(self) -> dict[str, int]:
        return {
            Limit.WAIT_SECONDS: self.wait_seconds,
            Limit.BUSY_CHECKS: self.checks,
            Limit.POLLS: self.checks,
            Limit.DEPLOYMENTS: self.max_deployments,
        }

    @property
    def timeout(self) -> Duration:
        """Waiting out another deployment, then up to ``max_deployments`` of its own, plus the tasks."""
        waits = (1 + self.max_deployments) * self.checks * self.wait_seconds
        return Duration.seconds(waits + TASK_ALLOWANCE.to_seconds())


@dataclass(frozen=True)
class ServingArns:
    """The ARNs the deployment role and the functions are scoped to (tokens of the Serving stack)."""

    stack: str
    endpoint: str
    models: str
    endpoint_configs: str
    alarms: tuple[str, ...]
    scaling_alarms: str
    scalable_targets: str
    serving_roles: str
    scaling_role: str
    event_bus: str
    model_packages: str
    volume_key: str | None = None
    monitoring_schedules: tuple[str, ...] = ()
    quality_job_definitions: str = ""
    monitoring_alarms: tuple[str, ...] = ()
    monitoring_roles: str = ""


def serving_arns(stack: Stack, props: DeployerProps, volume_key: kms.IKey | None) -> ServingArns:
    def sagemaker(resource: str) -> str:
        return stack.format_arn(service="sagemaker", resource=resource)

    # CloudWatch alarm ARNs put a ':' before the alarm's name.
    colon = ArnFormat.COLON_RESOURCE_NAME

    def alarm(name: str) -> str:
        return stack.format_arn(service="cloudwatch", resource="alarm", resource_name=name, arn_format=colon)

    def role(path: str) -> str:
        return stack.format_arn(
            service="iam", region="", resource="role", resource_name=f"{path.strip('/')}/*"
        )

    variant_id = f"endpoint/{props.endpoint_name}/variant/{props.variant_name}"
    return ServingArns(
        stack=stack.stack_id,
        endpoint=sagemaker(f"endpoint/{props.endpoint_name}"),
        models=sagemaker("model/*"),
        endpoint_configs=sagemaker("endpoint-config/*"),
        alarms=tuple(alarm(name) for name in props.rollback_alarm_names),
        # Target tracking names the alarms it creates "TargetTracking-<resource id>-AlarmHigh-<uuid>".
        scaling_alarms=stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"TargetTracking-{variant_id}-*",
            arn_format=colon,
        ),
        scalable_targets=stack.format_arn(service="application-autoscaling", resource="scalable-target/*"),
        serving_roles=role(props.serving_role_path),
        scaling_role=stack.format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name=f"aws-service-role/{SCALING_SERVICE}/{SCALING_ROLE}",
        ),
        event_bus=stack.format_arn(service="events", resource="event-bus", resource_name="default"),
        model_packages=sagemaker(f"model-package/{props.model_package_group}/*"),
        volume_key=volume_key.key_arn if volume_key is not None else None,
        monitoring_schedules=tuple(
            sagemaker(f"monitoring-schedule/{name}") for name in props.monitoring_schedule_names
        ),
        quality_job_definitions=sagemaker("model-quality-job-definition/*"),
        monitoring_alarms=tuple(alarm(name) for name in props.monitoring_alarm_names),
        monitoring_roles=role(props.monitoring_role_path) if props.monitoring_role_path else "",
    )


def _tag_conditions(kind: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return {"StringEquals": {f"aws:{kind}/{key}": value for key, value in sorted(tags.items())}}


def deployment_grants(props: DeployerProps, arns: ServingArns) -> tuple[Grant, ...]:
    """Everything the CloudFormation service role may do: the Serving stack's resources, nothing else."""
    grants = [
        Grant(
            "CreateServingModelsAndConfigs",
            ("sagemaker:CreateModel", "sagemaker:CreateEndpointConfig", "sagemaker:AddTags"),
            (arns.models, arns.endpoint_configs),
            f"a model swap creates a model and an endpoint config; {_GENERATED_NAMES} (on the request)",
            _tag_conditions("RequestTag", props.resource_tags),
        ),
        Grant(
            "ManageServingModelsAndConfigs",
            (
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:ListTags",
                "sagemaker:DeleteTags",
            ),
            (arns.models, arns.endpoint_configs),
            f"CloudFormation reads the replaced model and config and deletes them; {_GENERATED_NAMES}",
            _tag_conditions("ResourceTag", props.resource_tags),
        ),
        Grant(
            "ServingEndpoint",
            (
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ),
            (arns.endpoint,),
            "the stack's endpoint, by its fixed name: CloudFormation runs the blue/green update; registering "
            "the variant for autoscaling needs its weights and capacities",
        ),
        Grant(
            "PassServingModelRole",
            ("iam:PassRole",),
            (arns.serving_roles,),
            "the model runs with the endpoint's model role (its path), passed to SageMaker only",
            {"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        Grant(
            "RollbackAlarms",
            ALARM_MANAGEMENT,
            arns.alarms,
            "the endpoint's rollback alarms, by name: created with the first endpoint, read by the update",
        ),
        Grant(
            "TargetTrackingAlarms",
            ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"),
            (arns.scaling_alarms,),
            "the target-tracking policy's alarms, which Application Auto Scaling names after the variant "
            "it scales and a generated id",
        ),
        Grant(
            "ScaleServingVariant",
            (
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
            ),
            (arns.scalable_targets,),
            "the variant's scalable target and its policy; a scalable target's ARN ends in an id Application "
            "Auto Scaling generates, so the account and region are as narrow as IAM allows",
        ),
        Grant(
            "DescribeScaling",
            (
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
            ),
            ("*",),
            "CloudFormation reads the variant's scaling back; Application Auto Scaling's Describe* "
            f"{_NO_RESOURCE_LEVEL}",
        ),
        Grant(
            "CreateScalingServiceRole",
            ("iam:CreateServiceLinkedRole",),
            (arns.scaling_role,),
            "Application Auto Scaling's service-linked role for SageMaker variants, created on the first "
            "registration in an account",
            {"StringEquals": {"iam:AWSServiceName": SCALING_SERVICE}},
        ),
    ]
    if arns.volume_key is not None:
        grants.append(
            Grant(
                "EndpointVolumeKey",
                ("kms:CreateGrant", "kms:DescribeKey"),
                (arns.volume_key,),
                "SageMaker encrypts the new fleet's volumes with the endpoint config's key under a grant "
                "made with the caller's permissions when CloudFormation creates or updates the endpoint",
                {
                    "StringEquals": {"kms:ViaService": f"sagemaker.{Aws.REGION}.amazonaws.com"},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )
    if props.monitoring_role_path is not None:
        grants.extend(monitoring_deployment_grants(props, arns))
    return tuple(grants)


def monitoring_deployment_grants(props: DeployerProps, arns: ServingArns) -> tuple[Grant, ...]:
    """The endpoint's monitoring, which an update creates, moves to the new version's baseline or removes
    (a version without one) when the deployer sets the baseline parameter with the model."""
    return (
        Grant(
            "MonitoringSchedules",
            (
                "sagemaker:CreateMonitoringSchedule",
                "sagemaker:UpdateMonitoringSchedule",
                "sagemaker:DeleteMonitoringSchedule",
                "sagemaker:DescribeMonitoringSchedule",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ),
            arns.monitoring_schedules,
            "the endpoint's monitoring schedules, by their fixed names: created with the first baseline, "
            "updated to each deployed version's, deleted when a version without one goes live",
        ),
        Grant(
            "CreateQualityJobDefinitions",
            ("sagemaker:CreateModelQualityJobDefinition", "sagemaker:AddTags"),
            (arns.quality_job_definitions,),
            "each baseline replaces the model-quality job definition (its properties are immutable), so "
            "CloudFormation generates its name; the stage's tags, on the request, scope it instead",
            _tag_conditions("RequestTag", props.resource_tags),
        ),
        Grant(
            "ManageQualityJobDefinitions",
            (
                "sagemaker:DescribeModelQualityJobDefinition",
                "sagemaker:DeleteModelQualityJobDefinition",
                "sagemaker:ListTags",
                "sagemaker:DeleteTags",
            ),
            (arns.quality_job_definitions,),
            "CloudFormation reads the replaced job definition and deletes it; its name is generated, so the "
            "stage's tags scope it",
            _tag_conditions("ResourceTag", props.resource_tags),
        ),
        Grant(
            "PassMonitoringRole",
            ("iam:PassRole",),
            (arns.monitoring_roles,),
            "the monitoring jobs run with the monitoring role (its path), passed to SageMaker only",
            {"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        Grant(
            "MonitoringAlarms",
            ALARM_MANAGEMENT,
            arns.monitoring_alarms,
            "the monitoring schedules' violation alarms, by name: created and removed with the schedules",
        ),
    )


def task_grants(task: Task, props: DeployerProps, arns: ServingArns, role_arn: str) -> tuple[Grant, ...]:
    """What each task's function may do: read-only but for one UpdateStack with the deployment role."""
    describe = Grant(
        "DescribeServingStack",
        ("cloudformation:DescribeStacks",),
        (arns.stack,),
        "read the Serving stack's state",
    )
    if task is Task.DECIDE:
        return (
            describe,
            Grant(
                "ListModelVersions",
                ("sagemaker:ListModelPackages",),
                ("*",),
                f"read every version of the stage's group; ListModelPackages {_NO_RESOURCE_LEVEL}",
            ),
        )
    if task is Task.UPDATE:
        return (
            describe,
            Grant(
                "ReadVersionBaseline",
                ("sagemaker:DescribeModelPackage",),
                (arns.model_packages,),
                "read the deployed version's DriftCheckBaselines (its monitoring baseline), in the stage's "
                "group only",
            ),
            Grant(
                "UpdateServingStackThroughItsRole",
                ("cloudformation:UpdateStack",),
                (arns.stack,),
                "update the Serving stack's model parameter, only with the deployment role",
                {"StringEquals": {"cloudformation:RoleArn": role_arn}},
            ),
            Grant(
                "PassDeploymentRole",
                ("iam:PassRole",),
                (role_arn,),
                "hand the deployment role to CloudFormation for the update",
                {"StringEquals": {"iam:PassedToService": CLOUDFORMATION}},
            ),
        )
    if task is Task.POLL:
        return (
            Grant(
                "FollowServingStackUpdate",
                ("cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"),
                (arns.stack,),
                "read the Serving stack's state and the events of the update this execution started",
            ),
        )
    if task is Task.VERIFY:
        return (
            describe,
            Grant("DescribeEndpoint", ("sagemaker:DescribeEndpoint",), (arns.endpoint,), "the live endpoint"),
            Grant(
                "DescribeServingModelsAndConfigs",
                ("sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"),
                (arns.models, arns.endpoint_configs),
                f"which model package the live endpoint serves; {_GENERATED_NAMES}",
                _tag_conditions("ResourceTag", props.resource_tags),
            ),
        )
    return (
        Grant(
            "PublishDeploymentOutcome",
            ("events:PutEvents",),
            (arns.event_bus,),
            "publish the deployment's outcome on the default bus, as this source and detail-type only",
            {"StringEquals": {"events:source": props.event_source, "events:detail-type": props.event_type}},
        ),
    )


class ModelDeployer(Construct):
    """Exposes ``deployment_role``, ``functions`` (a ``ProjectFunction`` per ``Task``), ``state_machine``,
    ``log_group``, ``rule``, ``rule_role`` and ``rule_dead_letter_queue``.

    ``model_parameter`` is the stack's parameter holding the live model package version and
    ``baseline_parameter`` the one holding its monitoring baseline, which the deployer sets in the same
    update; the deployer updates the stack it is in (``volume_key``: the endpoint config's volume key,
    None where the instance type takes none).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: DeployerProps,
        model_parameter: CfnParameter,
        baseline_parameter: CfnParameter,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        logs_key: kms.IKey,
        queue_key: kms.IKey,
        volume_key: kms.IKey | None,
    ) -> None:
        stack = Stack.of(scope)
        for what, parameter in (("model", model_parameter), ("baseline", baseline_parameter)):
            if Stack.of(parameter) is not stack:
                raise ValueError(
                    f"ModelDeployer {construct_id!r}: the {what} parameter must be a parameter of the stack "
                    "the deployer lives in (the deployer updates its own stack, the Serving stack)"
                )
            if parameter.default not in (None, ""):
                raise ValueError(
                    f"ModelDeployer {construct_id!r}: the {what} parameter's default must be empty (nothing "
                    f"deployed or monitored before the first approval), not {parameter.default!r}"
                )
        if model_parameter is baseline_parameter:
            raise ValueError(
                f"ModelDeployer {construct_id!r}: the model and the baseline parameter must be two parameters"
            )
        super().__init__(scope, construct_id)
        parameter_name = stack.resolve(model_parameter.logical_id)
        arns = serving_arns(stack, props, volume_key)

        self.deployment_role = iam.Role(
            self,
            "DeploymentRole",
            assumed_by=iam.ServicePrincipal(CLOUDFORMATION).with_conditions(
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            path=props.deployment_role_path,
            description=f"{props.qualifier}: CloudFormation service role of the deployer's stack updates",
        )
        attach(self.deployment_role, deployment_grants(props, arns))
        acknowledge_inline_policy(
            self.deployment_role,
            "the deployment role's policy is written for this role alone and names the Serving stack's "
            "resources; a managed policy would add an attachable copy, no narrowing",
        )

        environment = {
            SERVING_STACK_ENV: stack.stack_id,
            MODEL_PARAMETER_ENV: parameter_name,
            BASELINE_PARAMETER_ENV: stack.resolve(baseline_parameter.logical_id),
            DEPLOYMENT_ROLE_ENV: self.deployment_role.role_arn,
            MODEL_PACKAGE_GROUP_ENV: props.model_package_group,
            ENDPOINT_NAME_ENV: props.endpoint_name,
            VARIANT_NAME_ENV: props.variant_name,
            DEPLOYMENT_EVENT_SOURCE_ENV: props.event_source,
            DEPLOYMENT_EVENT_TYPE_ENV: props.event_type,
            DEPLOYMENT_METRIC_NAMESPACE_ENV: props.metric_namespace,
        }
        functions: dict[Task, ProjectFunction] = {}
        for task in Task:
            function = ProjectFunction(
                self,
                f"{task.capitalize()}Function",
                props=FunctionProps(
                    qualifier=props.qualifier,
                    name=DEPLOYER,
                    handler=f"{DEPLOYER}.handler.{task}",
                    function_name=f"{props.name}-{task}",
                    description=f"{props.qualifier} deployer: {task} (state machine {props.name})",
                    reserved_concurrency=TASK_CONCURRENCY,
                    environment=environment,
                    log_retention_days=props.log_retention_days,
                ),
                vpc=vpc,
                subnets=subnets,
                security_group=security_group,
                logs_key=logs_key,
                queue_key=queue_key,
            )
            attach(function.role, task_grants(task, props, arns, self.deployment_role.role_arn))
            functions[task] = function
        self.functions: Mapping[Task, ProjectFunction] = MappingProxyType(functions)

        self.log_group = encrypted_log_group(
            self,
            "LogGroup",
            key=logs_key,
            days=props.log_retention_days,
            # Step Functions' vended logs: the prefix keeps CloudWatch Logs' resource policy small.
            name=f"/aws/vendedlogs/states/{props.name}",
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=props.name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(props)),
            timeout=props.timeout,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
            comment=f"{props.qualifier}: deploy the highest approved model version through the Serving stack",
        )
        self._acknowledge_state_machine_role()
        self._rule(stack, props, queue_key)

    # ---------------------------------------------------------------- the state machine

    def _definition(self, props: DeployerProps) -> sfn.IChainable:
        task_states = {task: self._task(task) for task in Task}
        start = sfn.Pass(
            self,
            "Start",
            comment="the execution's context and the bounds of every wait loop (from the stage's policy)",
            parameters={
                TRIGGER_KEY: sfn.JsonPath.entire_payload,
                EXECUTION_KEY: sfn.JsonPath.string_at("$$.Execution.Name"),
                STARTED_KEY: sfn.JsonPath.string_at("$$.Execution.StartTime"),
                LIMITS_KEY: {str(k): v for k, v in props.limits.items()},
            },
        )
        wait_busy = sfn.Wait(
            self,
            "WaitWhileBusy",
            comment="another update holds the Serving stack: look again, then decide again",
            time=sfn.WaitTime.duration(Duration.seconds(props.wait_seconds)),
        )
        wait_update = sfn.Wait(
            self,
            "WaitForStack",
            comment="the update is in progress: look at the stack again",
            time=sfn.WaitTime.duration(Duration.seconds(props.wait_seconds)),
        )
        failed = sfn.Fail(self, "DeploymentFailed", error="DeploymentFailed", cause_path="$.outcome.reason")
        publish_failed = sfn.Fail(
            self,
            "PublishFailed",
            error="PublishFailed",
            cause="the deployment's outcome could not be published; the publish task's log says why",
        )
        done = sfn.Succeed(self, "Converged", comment="the endpoint serves the highest approved version")
        route = sfn.Choice(self, "Route", comment="where the last task sends the execution (its 'next')")
        targets_by_next: dict[Next, sfn.IChainable] = {
            Next.WAIT: wait_busy,
            Next.UPDATE: task_states[Task.UPDATE],
            Next.POLL: wait_update,
            Next.VERIFY: task_states[Task.VERIFY],
            Next.PUBLISH: task_states[Task.PUBLISH],
            Next.DECIDE: task_states[Task.DECIDE],
            Next.DONE: done,
            Next.FAIL: failed,
        }
        for next_value, state in targets_by_next.items():
            route.when(sfn.Condition.string_equals(f"$.{NEXT_KEY}", str(next_value)), state)
        route.otherwise(
            sfn.Fail(self, "UnknownNext", error="UnknownNext", cause="a task returned no known 'next'")
        )
        for task, state in task_states.items():
            if task is Task.PUBLISH:
                state.add_catch(publish_failed, errors=[sfn.Errors.ALL], result_path=f"$.{ERROR_KEY}")
            else:
                state.add_catch(
                    task_states[Task.PUBLISH], errors=[sfn.Errors.ALL], result_path=f"$.{ERROR_KEY}"
                )
            state.next(route)
        wait_busy.next(task_states[Task.DECIDE])
        wait_update.next(task_states[Task.POLL])
        return start.next(task_states[Task.DECIDE])

    def _task(self, task: Task) -> tasks.LambdaInvoke:
        state = tasks.LambdaInvoke(
            self,
            task.capitalize(),
            lambda_function=self.functions[task].function,
            payload_response_only=True,  # the function takes the state and returns the next one
            retry_on_service_exceptions=True,
            comment=_TASK_COMMENTS[task],
        )
        state.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=Duration.seconds(5),
            max_attempts=6,
            backoff_rate=2,
        )
        state.add_retry(
            errors=[sfn.Errors.TASKS_FAILED],
            interval=Duration.seconds(5),
            max_attempts=TASK_RETRIES,
            backoff_rate=2,
        )
        return state

    def _acknowledge_state_machine_role(self) -> None:
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery and the other vended-log calls) and X-Ray "
            "trace upload support no resource-level permissions",
        )
        for function in self.functions.values():
            arn = Stack.of(self).resolve(function.function.function_arn)
            logical_id = arn["Fn::GetAtt"][0]
            acknowledge(
                policy,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "CDK grants lambda:InvokeFunction on the task's function and its versions (':*'); the state "
                "machine invokes the unqualified function only",
            )
        acknowledge_inline_policy(
            self.state_machine.role,
            "the state machine's role policy is generated by CDK for this role alone: invoke its five "
            "functions, deliver its logs, upload its traces",
        )

    # ---------------------------------------------------------------- the approval rule

    def _rule(self, stack: Stack, props: DeployerProps, queue_key: kms.IKey) -> None:
        made = dead_lettered_rule(
            self,
            "ApprovalRule",
            "RuleDeadLetterQueue",
            rule_name=props.rule_name,
            description=(
                f"{props.qualifier}: approvals and rejections in {props.model_package_group} "
                "start the deployer"
            ),
            event_pattern=approval_pattern(props.model_package_group),
            queue_key=queue_key,
            sid="ApprovalRuleDeadLetters",
            rule="approval rule",
        )
        self.rule, self.rule_dead_letter_queue = made.rule, made.dead_letter_queue
        # The role EventBridge starts executions with, for this rule of this account only.
        self.rule_role = iam.Role(
            self,
            "RuleRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": made.arn},
                }
            ),
            description=f"{props.qualifier}: EventBridge starts the deployer for {props.rule_name}",
        )
        self.rule.add_target(
            targets.SfnStateMachine(self.state_machine, role=self.rule_role, **made.delivery())
        )
        acknowledge_inline_policy(
            self.rule_role,
            "the approval rule's role policy is generated by CDK for this role alone: start executions of "
            "the deployer's state machine, nothing else",
        )


def approval_pattern(group: str) -> events.EventPattern:
    """Approved and Rejected versions of ``group``: the only changes that can move the endpoint."""
    return events.EventPattern(
        source=[APPROVAL_SOURCE],
        detail_type=[APPROVAL_DETAIL_TYPE],
        detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": [APPROVED, REJECTED]},
    )


_TASK_COMMENTS: Final[Mapping[Task, str]] = {
    Task.DECIDE: "re-read the registry and the Serving stack: deploy, nothing to do, hold, or wait",
    Task.UPDATE: "UpdateStack: previous template, new model parameter, other values kept, deployment role",
    Task.POLL: "follow this execution's update by its request token until it leaves *_IN_PROGRESS (bounded)",
    Task.VERIFY: "success only if the live endpoint is InService on the requested model package",
    Task.PUBLISH: "the outcome as an EventBridge event and a CloudWatch metric",
}
