"""rookery's serving rules (H1, H2, H3, H4, H5, A1): what no pack checks on the endpoint, its
deployment and the private API in front of it.

- ``Rookery-H1b``: the endpoint config's volume key follows the instance type: none where the type
  keeps the model on NVMe instance storage (SageMaker rejects a key there; ``stage.serving``'s table),
  the customer key everywhere else (``Rookery-H1``).
- ``Rookery-H2b``: a hosted model runs behind a security group of its own, defined with it, used by
  nothing else, with no ingress at all (SageMaker needs none to serve) and egress only on 443.
- ``Rookery-H3``: a role API Gateway assumes may call only ``InvokeEndpoint``, and only on an endpoint
  of this template.
- ``Rookery-H4b``: model swaps keep the autoscaled instance count (``RetainAllVariantProperties``)
  without freezing data capture (``DataCaptureConfig`` excluded).
- ``Rookery-H5d``: the endpoint deploys blue/green with canary or linear traffic shifting, a bake, a
  termination wait and a timeout longer than both, and auto-rollback on alarms.
- ``Rookery-H5e``: every rollback alarm the deployment config names exists in the template by that
  name, is created before the endpoint, treats missing data as not breaching, and together they
  watch the endpoint's 5xx error rate and model latency.
- ``Rookery-A1``: a REST API is private, reachable only through a VPC endpoint (resource policy deny
  on ``aws:SourceVpce``); ``Rookery-A1b``: every method authorizes with IAM; ``Rookery-A1c``: every
  stage writes access logs to a KMS-encrypted log group of the template, traces, and has a WAF web
  ACL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.deployment import role_statements, trusted_services
from infra.audit.rules.pack import rule
from infra.audit.template import Template, as_list, flatten, props, resources, statements, target
from stage.alarms import METRICS, NAMESPACE
from stage.serving import has_instance_storage

HTTPS: Final = 443
BLUE_GREEN_TRAFFIC: Final = frozenset({"CANARY", "LINEAR"})
# The rollback alarms must watch these metrics among them: the error rate and the model's latency.
REQUIRED_ROLLBACK_METRICS: Final = (METRICS["errors"].metric, METRICS["model_latency"].metric)
API_GATEWAY: Final = "apigateway.amazonaws.com"
INVOKE_ENDPOINT: Final = "sagemaker:invokeendpoint"
# Where a resource names the security groups it runs in.
_GROUP_LISTS: Final = ("SecurityGroupIds", "SecurityGroups", "VpcSecurityGroupIds")


def _references(value: Any) -> set[str]:
    """Every logical id a value points at (Ref, Fn::GetAtt), however deep."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        if (ref := target(value)) is not None:
            found.add(ref)
        for item in value.values():
            found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


@rule(
    id="Rookery-H1b",
    control="H1",
    title="Endpoint config volume key follows the instance type: none on NVMe instance storage only",
    fix='leave KmsKeyId out for an NVMe instance type (serving.volume_encryption = "instance-storage"), '
    "or choose a type without instance storage",
)
def _volume_key_by_instance_type(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, config in resources(template, "AWS::SageMaker::EndpointConfig"):
        p = props(config)
        types = [flatten(v.get("InstanceType")) for v in as_list(p.get("ProductionVariants"))]
        # Only literal SageMaker instance types (ml.<family>.<size>) can be looked up in the table.
        storage = [t for t in types if t.startswith("ml.") and t.count(".") == 2 and has_instance_storage(t)]
        if p.get("KmsKeyId") and storage:
            yield (
                logical_id,
                f"{storage} keep the model on NVMe instance storage, where SageMaker rejects a volume key",
            )
        if storage and len(storage) != len(types):
            yield logical_id, f"variants mix NVMe {storage} and EBS-backed types {types}: no key fits both"


def _is_egress_https_only(rule_: Mapping[str, Any]) -> bool:
    return str(rule_.get("IpProtocol")) == "tcp" and rule_.get("FromPort") == rule_.get("ToPort") == HTTPS


@rule(
    id="Rookery-H2b",
    control="H2",
    title="Hosted models: a security group of their own, no ingress, egress only on 443",
    fix="give the model a security group of its own without ingress rules and with HTTPS egress only",
)
def _model_security_groups(template: Template) -> Iterator[tuple[str, str]]:
    groups = dict(resources(template, "AWS::EC2::SecurityGroup"))
    models = dict(resources(template, "AWS::SageMaker::Model"))
    used_by: dict[str, set[str]] = {}
    for logical_id, resource in resources(template):
        for key in _GROUP_LISTS:
            for group in _references(props(resource).get(key)) | _references(
                (props(resource).get("VpcConfig") or {}).get(key)
            ):
                used_by.setdefault(group, set()).add(logical_id)
    for logical_id, model in models.items():
        refs = as_list((props(model).get("VpcConfig") or {}).get("SecurityGroupIds"))
        for ref in refs:
            group_id = target(ref)
            if group_id not in groups:
                yield (
                    logical_id,
                    f"security group {flatten(ref)} is not defined with the model: it cannot be checked",
                )
                continue
            if others := sorted(used_by.get(group_id, set()) - set(models)):
                yield logical_id, f"security group {group_id} is shared with {others}; give the model its own"
            definition = props(groups[group_id])
            ingress = as_list(definition.get("SecurityGroupIngress")) + [
                r
                for _, r in resources(template, "AWS::EC2::SecurityGroupIngress")
                if target(props(r).get("GroupId")) == group_id
            ]
            if ingress:
                yield (
                    logical_id,
                    f"security group {group_id} admits traffic; SageMaker needs no ingress to serve",
                )
            egress = as_list(definition.get("SecurityGroupEgress")) + [
                props(r)
                for _, r in resources(template, "AWS::EC2::SecurityGroupEgress")
                if target(props(r).get("GroupId")) == group_id
            ]
            if not egress:
                yield logical_id, f"security group {group_id} has no egress rule: it allows all outbound"
            elif wide := [flatten(e.get("Description") or e) for e in egress if not _is_egress_https_only(e)]:
                yield logical_id, f"security group {group_id} allows egress beyond HTTPS: {wide}"


@rule(
    id="Rookery-H3",
    control="H3",
    title="API Gateway roles may call only InvokeEndpoint, on an endpoint of this template",
    fix="grant the integration role sagemaker:InvokeEndpoint on the endpoint's ARN only",
)
def _integration_roles(template: Template) -> Iterator[tuple[str, str]]:
    roles = dict(resources(template, "AWS::IAM::Role"))
    endpoints = {
        flatten(props(e).get("EndpointName")) for _, e in resources(template, "AWS::SageMaker::Endpoint")
    }
    for logical_id, role_policy in role_statements(template).items():
        if API_GATEWAY not in trusted_services(roles[logical_id]):
            continue
        for statement in role_policy:
            if statement.get("Effect") != "Allow":
                continue
            actions = {a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}
            sagemaker = {a for a in actions if a.startswith("sagemaker:") or a == "*"}
            if other := sorted(sagemaker - {INVOKE_ENDPOINT}):
                yield logical_id, f"{other}: the integration may only invoke the endpoint"
            if INVOKE_ENDPOINT not in sagemaker:
                continue
            for resource in (flatten(r) for r in as_list(statement.get("Resource"))):
                name = resource.rsplit(":endpoint/", 1)[-1] if ":endpoint/" in resource else None
                if name is None or "*" in resource or name not in endpoints:
                    yield logical_id, f"InvokeEndpoint on {resource}, not on an endpoint of this template"


@rule(
    id="Rookery-H4b",
    control="H4",
    title="Model swaps keep the autoscaled instance count but not the data capture settings",
    fix="set RetainAllVariantProperties and exclude DataCaptureConfig from the retained properties",
)
def _retained_variant_properties(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, endpoint in resources(template, "AWS::SageMaker::Endpoint"):
        p = props(endpoint)
        if p.get("RetainAllVariantProperties") is not True:
            yield logical_id, "a model swap would reset the instance count autoscaling has set"
        excluded = {e.get("VariantPropertyType") for e in as_list(p.get("ExcludeRetainedVariantProperties"))}
        if "DataCaptureConfig" not in excluded:
            yield (
                logical_id,
                "retaining every variant property freezes data capture: exclude DataCaptureConfig",
            )


@rule(
    id="Rookery-H5d",
    control="H5",
    title="Endpoint deployments: blue/green with canary or linear traffic, bake, termination wait, "
    "a timeout longer than both, auto-rollback on alarms",
    fix="set DeploymentConfig.BlueGreenUpdatePolicy (CANARY or LINEAR) and AutoRollbackConfiguration",
)
def _blue_green(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, endpoint in resources(template, "AWS::SageMaker::Endpoint"):
        deployment = props(endpoint).get("DeploymentConfig") or {}
        policy = deployment.get("BlueGreenUpdatePolicy") or {}
        routing = policy.get("TrafficRoutingConfiguration") or {}
        if routing.get("Type") not in BLUE_GREEN_TRAFFIC:
            yield logical_id, f"traffic shifting {routing.get('Type')!r}, not canary or linear blue/green"
        bake = routing.get("WaitIntervalInSeconds")
        termination = policy.get("TerminationWaitInSeconds")
        timeout = policy.get("MaximumExecutionTimeoutInSeconds")
        if not isinstance(bake, int) or bake <= 0:
            yield logical_id, "no bake (WaitIntervalInSeconds): the alarms get no time to stop a bad model"
        if not isinstance(termination, int):
            yield logical_id, "no TerminationWaitInSeconds: the old fleet is gone the moment traffic shifts"
        if (
            isinstance(bake, int)
            and isinstance(termination, int)
            and (not isinstance(timeout, int) or timeout <= bake + termination)
        ):
            yield (
                logical_id,
                f"MaximumExecutionTimeoutInSeconds {timeout} is not longer than bake plus termination wait",
            )
        if not as_list((deployment.get("AutoRollbackConfiguration") or {}).get("Alarms")):
            yield logical_id, "no rollback alarms: a failing deployment is never rolled back automatically"


@rule(
    id="Rookery-H5e",
    control="H5",
    title="Rollback alarms exist by name, before the endpoint, on its 5xx rate and model latency, "
    "missing data not breaching",
    fix="create each alarm the deployment config names, with that AlarmName, before the endpoint",
)
def _rollback_alarms(template: Template) -> Iterator[tuple[str, str]]:
    alarms = {
        flatten(props(a).get("AlarmName")): (i, a) for i, a in resources(template, "AWS::CloudWatch::Alarm")
    }
    for logical_id, endpoint in resources(template, "AWS::SageMaker::Endpoint"):
        p = props(endpoint)
        deployment = p.get("DeploymentConfig") or {}
        names = [
            flatten(a.get("AlarmName"))
            for a in as_list((deployment.get("AutoRollbackConfiguration") or {}).get("Alarms"))
        ]
        depends = set(as_list(endpoint.get("DependsOn")))
        endpoint_name = flatten(p.get("EndpointName"))
        watched: set[str] = set()
        for name in names:
            if name not in alarms:
                yield logical_id, f"rollback alarm {name!r} is not in the template"
                continue
            alarm_id, alarm = alarms[name]
            a = props(alarm)
            if alarm_id not in depends:
                yield logical_id, f"rollback alarm {name!r} is not created before the endpoint (DependsOn)"
            if a.get("TreatMissingData") != "notBreaching":
                yield logical_id, f"rollback alarm {name!r} breaches on missing data: an idle bake rolls back"
            dimensions = {d.get("Name"): flatten(d.get("Value")) for d in as_list(a.get("Dimensions"))}
            if a.get("Namespace") == NAMESPACE and dimensions.get("EndpointName") == endpoint_name:
                watched.add(str(a.get("MetricName")))
        if names and (missing := [m for m in REQUIRED_ROLLBACK_METRICS if m not in watched]):
            yield logical_id, f"no rollback alarm watches {missing} of {endpoint_name}"


def _apis(template: Template) -> dict[str, Mapping[str, Any]]:
    return dict(resources(template, "AWS::ApiGateway::RestApi"))


@rule(
    id="Rookery-A1",
    control="A1",
    title="REST APIs are private: a VPC endpoint, and a resource policy denying any other source",
    fix="set EndpointConfiguration PRIVATE with VpcEndpointIds and deny execute-api:Invoke unless "
    "aws:SourceVpce is the endpoint",
)
def _private_api(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, api in _apis(template).items():
        p = props(api)
        configuration = p.get("EndpointConfiguration") or {}
        if as_list(configuration.get("Types")) != ["PRIVATE"]:
            yield logical_id, f"endpoint type {configuration.get('Types')}, not PRIVATE"
        if not as_list(configuration.get("VpcEndpointIds")):
            yield logical_id, "no VPC endpoint is associated with the API"
        denies = [
            s
            for s in statements(p.get("Policy"))
            if s.get("Effect") == "Deny"
            and any(
                str(a).lower() in ("execute-api:invoke", "execute-api:*") for a in as_list(s.get("Action"))
            )
            and any(
                key.lower() == "aws:sourcevpce"
                for operator, block in (s.get("Condition") or {}).items()
                if operator.startswith("StringNotEquals")
                for key in block
            )
        ]
        if not denies:
            yield (
                logical_id,
                "the resource policy does not deny calls from outside the VPC endpoint (aws:SourceVpce)",
            )


@rule(
    id="Rookery-A1b",
    control="A1",
    title="Every API method authorizes callers with IAM (SigV4)",
    fix="set AuthorizationType AWS_IAM on the method",
)
def _iam_methods(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, method in resources(template, "AWS::ApiGateway::Method"):
        p = props(method)
        if p.get("HttpMethod") != "OPTIONS" and p.get("AuthorizationType") != "AWS_IAM":
            yield logical_id, f"authorization {p.get('AuthorizationType')!r}, not AWS_IAM"


@rule(
    id="Rookery-A1c",
    control="A1",
    title="API stages: access logs in a KMS-encrypted log group, tracing, a WAF web ACL",
    fix="set AccessLogSetting to an encrypted log group of the stack, TracingEnabled, and a web ACL",
)
def _api_stages(template: Template) -> Iterator[tuple[str, str]]:
    log_groups = dict(resources(template, "AWS::Logs::LogGroup"))
    protected = {
        ref
        for _, association in resources(template, "AWS::WAFv2::WebACLAssociation")
        for ref in _references(props(association).get("ResourceArn"))
    }
    for logical_id, stage in resources(template, "AWS::ApiGateway::Stage"):
        p = props(stage)
        destination = _references((p.get("AccessLogSetting") or {}).get("DestinationArn")) & set(log_groups)
        if not destination:
            yield logical_id, "no access logs to a log group of this stack"
        elif unencrypted := sorted(g for g in destination if not props(log_groups[g]).get("KmsKeyId")):
            yield logical_id, f"access log group {unencrypted} is not encrypted with a customer key"
        if p.get("TracingEnabled") is not True:
            yield logical_id, "X-Ray tracing is off"
        if logical_id not in protected:
            yield logical_id, "no WAF web ACL is associated with the stage"
