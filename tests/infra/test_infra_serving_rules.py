"""rookery's serving and deployment rules on the synthesized ``Rookery-<stage>-Serving``: the real
template passes every rule, and the same template mutated to break one makes that rule fail.

Logical ids come from the construct objects, never hard-coded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from infra_testing import Synth, ref, resources

from infra.audit.rules import ROOKERY_RULES
from infra.stacks.serving import ServingStack
from rookery_contracts.deployer import Task

pytestmark = pytest.mark.xdist_group("infra-synth")

Template = dict[str, Any]


def _findings(template: Mapping[str, Any], rule_id: str) -> list[tuple[str, str]]:
    return [(f.logical_id, f.message) for f in ROOKERY_RULES.evaluate(template) if f.rule_id == rule_id]


def _serving(synth: Synth) -> ServingStack:
    assert synth.stacks.serving is not None
    return synth.stacks.serving


def _copy(synth: Synth) -> Template:
    return copy.deepcopy(dict(synth.serving))


def _props(template: Template, synth: Synth, construct: Any) -> dict[str, Any]:
    return dict(template["Resources"][synth.logical_id(construct)]["Properties"])


def _set(template: Template, synth: Synth, construct: Any, change: Callable[[dict[str, Any]], None]) -> None:
    change(template["Resources"][synth.logical_id(construct)]["Properties"])


def _policy_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    return [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if ref(role_id) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _with_action(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    return next(
        s for s in statements if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )


SERVING_RULES = (
    "Rookery-H1",
    "Rookery-H2",
    "Rookery-H5",
    "Rookery-H5b",
    "Rookery-H5c",
    "Rookery-L2",
    "Rookery-H1b",
    "Rookery-H2b",
    "Rookery-H3",
    "Rookery-H4b",
    "Rookery-H5d",
    "Rookery-H5e",
    "Rookery-A1",
    "Rookery-A1b",
    "Rookery-A1c",
)


@pytest.mark.parametrize("rule_id", SERVING_RULES)
def test_the_synthesized_serving_stack_passes(synth: Synth, rule_id: str) -> None:
    # Only the NVMe exception is acknowledged in the template; no shipped stage uses such a type.
    assert _findings(synth.serving, rule_id) == []


# ---------------------------------------------------------------- H5: the deployer's CloudFormation role


def test_h5_a_deployment_role_any_account_may_assume_fails(dev: Synth) -> None:
    template, role = _copy(dev), _serving(dev).deployer.deployment_role
    _set(template, dev, role, lambda p: p["AssumeRolePolicyDocument"]["Statement"][0].pop("Condition"))
    assert _findings(template, "Rookery-H5") == [
        (dev.logical_id(role), "CloudFormation of any account may assume the role (no aws:SourceAccount)")
    ]


def test_h5_wildcards_and_unscoped_resources_fail(dev: Synth) -> None:
    template, role = _copy(dev), _serving(dev).deployer.deployment_role
    statements = _policy_statements(template, dev.logical_id(role))
    _with_action(statements, "sagemaker:CreateModel")["Action"].append("sagemaker:*")
    _with_action(statements, "cloudwatch:PutMetricAlarm")["Resource"] = "*"
    messages = [m for _, m in _findings(template, "Rookery-H5")]
    assert any(m.startswith("wildcard actions ['sagemaker:*']") for m in messages)
    assert any("cloudwatch:putmetricalarm" in m and "on every resource" in m for m in messages)


def test_h5_passing_the_model_role_to_another_service_fails(dev: Synth) -> None:
    template, role = _copy(dev), _serving(dev).deployer.deployment_role
    passing = _with_action(_policy_statements(template, dev.logical_id(role)), "iam:PassRole")
    passing["Condition"] = {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert _findings(template, "Rookery-H5") == [
        (dev.logical_id(role), "iam:PassRole to ['lambda.amazonaws.com'], not only to SageMaker")
    ]


def test_h5b_an_update_without_the_role_condition_or_on_every_stack_fails(dev: Synth) -> None:
    template = _copy(dev)
    role_id = dev.logical_id(_serving(dev).deployer.functions[Task.UPDATE].role)
    update = _with_action(_policy_statements(template, role_id), "cloudformation:UpdateStack")
    update.pop("Condition")
    update["Resource"] = "*"
    messages = [m for logical_id, m in _findings(template, "Rookery-H5b") if logical_id == role_id]
    assert messages == [
        "['cloudformation:updatestack'] without a cloudformation:RoleArn condition: any role would do",
        "['cloudformation:updatestack'] on every stack; name the stack it updates",
    ]


def test_h5c_a_function_that_could_update_the_endpoint_itself_fails(dev: Synth) -> None:
    template = _copy(dev)
    role_id = dev.logical_id(_serving(dev).deployer.functions[Task.VERIFY].role)
    statement = _with_action(_policy_statements(template, role_id), "sagemaker:DescribeEndpoint")
    statement["Action"] = ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"]
    assert _findings(template, "Rookery-H5c") == [
        (role_id, "['sagemaker:updateendpoint'] would change an endpoint outside its stack")
    ]


def test_l2_the_approval_rule_without_its_dead_letter_queue_fails(dev: Synth) -> None:
    template, rule = _copy(dev), _serving(dev).deployer.rule
    _set(template, dev, rule, lambda p: p["Targets"][0].pop("DeadLetterConfig"))
    assert [logical_id for logical_id, _ in _findings(template, "Rookery-L2")] == [dev.logical_id(rule)]


# ---------------------------------------------------------------- H1b, H2b: the endpoint config and the model


def test_h1b_a_volume_key_on_an_nvme_instance_type_fails(dev: Synth) -> None:
    template, config = _copy(dev), _serving(dev).endpoint.endpoint_config
    _set(template, dev, config, lambda p: p["ProductionVariants"][0].update(InstanceType="ml.g5.xlarge"))
    assert _findings(template, "Rookery-H1b") == [
        (
            dev.logical_id(config),
            "['ml.g5.xlarge'] keep the model on NVMe instance storage, where SageMaker rejects a volume key",
        )
    ]
    # Without the key, the NVMe type passes H1b (H1's finding then needs an acknowledged reason).
    _set(template, dev, config, lambda p: p.pop("KmsKeyId"))
    assert _findings(template, "Rookery-H1b") == []
    assert [m for _, m in _findings(template, "Rookery-H1")] == [
        "the endpoint's storage is not encrypted with a customer key"
    ]


def test_h2b_ingress_on_the_models_group_fails(dev: Synth) -> None:
    template, network = _copy(dev), _serving(dev).model_network
    group_id = dev.logical_id(network.security_group)
    template["Resources"]["ProbeIngress"] = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8080,
            "CidrIp": "10.0.0.0/8",
        },
    }
    model_id = dev.logical_id(_serving(dev).endpoint.model)
    assert _findings(template, "Rookery-H2b") == [
        (model_id, f"security group {group_id} admits traffic; SageMaker needs no ingress to serve")
    ]


def test_h2b_a_group_shared_with_a_function_or_open_egress_fails(dev: Synth) -> None:
    template, serving = _copy(dev), _serving(dev)
    group_id = dev.logical_id(serving.model_network.security_group)
    function = serving.deployer.functions[Task.DECIDE].function
    _set(template, dev, function, lambda p: p["VpcConfig"]["SecurityGroupIds"].append(
        {"Fn::GetAtt": [group_id, "GroupId"]}
    ))  # fmt: skip
    _set(template, dev, serving.model_network.security_group, lambda p: p["SecurityGroupEgress"].append(
        {"CidrIp": "0.0.0.0/0", "IpProtocol": "-1", "Description": "everything"}
    ))  # fmt: skip
    messages = [m for _, m in _findings(template, "Rookery-H2b")]
    assert messages == [
        f"security group {group_id} is shared with ['{dev.logical_id(function)}']; give the model its own",
        f"security group {group_id} allows egress beyond HTTPS: ['everything']",
    ]


# ---------------------------------------------------------------- H3: the API's integration role


def test_h3_an_integration_role_beyond_invoke_on_this_endpoint_fails(dev: Synth) -> None:
    template, api = _copy(dev), _serving(dev).api
    role_id = dev.logical_id(api.integration_role)
    invoke = _with_action(_policy_statements(template, role_id), "sagemaker:InvokeEndpoint")
    invoke["Action"] = ["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"]
    invoke["Resource"] = {"Fn::Join": ["", ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*"]]}
    assert _findings(template, "Rookery-H3") == [
        (role_id, "['sagemaker:describeendpoint']: the integration may only invoke the endpoint"),
        (
            role_id,
            "InvokeEndpoint on arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*, not on an endpoint of "
            "this template",
        ),
    ]


# ---------------------------------------------------------------- H4b, H5d, H5e: the endpoint's deployment


def test_h4b_a_swap_that_resets_the_count_or_freezes_capture_fails(dev: Synth) -> None:
    template, endpoint = _copy(dev), _serving(dev).endpoint.endpoint
    _set(template, dev, endpoint, lambda p: p.pop("ExcludeRetainedVariantProperties"))
    assert _findings(template, "Rookery-H4b") == [
        (
            dev.logical_id(endpoint),
            "retaining every variant property freezes data capture: exclude DataCaptureConfig",
        )
    ]
    _set(template, dev, endpoint, lambda p: p.update(RetainAllVariantProperties=False))
    assert "a model swap would reset the instance count autoscaling has set" in [
        m for _, m in _findings(template, "Rookery-H4b")
    ]


def test_h5d_all_at_once_without_bake_or_rollback_fails(dev: Synth) -> None:
    template, endpoint = _copy(dev), _serving(dev).endpoint.endpoint

    def break_it(p: dict[str, Any]) -> None:
        policy = p["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        policy["TrafficRoutingConfiguration"] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        policy["MaximumExecutionTimeoutInSeconds"] = policy["TerminationWaitInSeconds"]
        p["DeploymentConfig"].pop("AutoRollbackConfiguration")

    _set(template, dev, endpoint, break_it)
    assert [m for _, m in _findings(template, "Rookery-H5d")] == [
        "traffic shifting 'ALL_AT_ONCE', not canary or linear blue/green",
        "no bake (WaitIntervalInSeconds): the alarms get no time to stop a bad model",
        "MaximumExecutionTimeoutInSeconds 60 is not longer than bake plus termination wait",
        "no rollback alarms: a failing deployment is never rolled back automatically",
    ]


def test_h5e_a_rollback_alarm_missing_unordered_or_on_the_wrong_metric_fails(dev: Synth) -> None:
    serving = _serving(dev)
    alarms = serving.alarms.alarms
    endpoint_id = dev.logical_id(serving.endpoint.endpoint)
    errors, latency = dev.logical_id(alarms["errors"]), dev.logical_id(alarms["model_latency"])
    errors_name = _props(_copy(dev), dev, alarms["errors"])["AlarmName"]

    missing = _copy(dev)
    del missing["Resources"][errors]
    assert (endpoint_id, f"rollback alarm {errors_name!r} is not in the template") in _findings(
        missing, "Rookery-H5e"
    )
    assert (
        endpoint_id,
        f"no rollback alarm watches ['Invocation5XXErrors'] of {serving.endpoint.endpoint.endpoint_name}",
    ) in _findings(missing, "Rookery-H5e")

    unordered = _copy(dev)
    unordered["Resources"][endpoint_id]["DependsOn"].remove(errors)
    assert _findings(unordered, "Rookery-H5e") == [
        (endpoint_id, f"rollback alarm {errors_name!r} is not created before the endpoint (DependsOn)")
    ]

    breaching = _copy(dev)
    breaching["Resources"][latency]["Properties"]["TreatMissingData"] = "breaching"
    breaching["Resources"][latency]["Properties"]["MetricName"] = "CPUUtilization"
    messages = [m for _, m in _findings(breaching, "Rookery-H5e")]
    assert any("breaches on missing data" in m for m in messages)
    assert (
        f"no rollback alarm watches ['ModelLatency'] of {serving.endpoint.endpoint.endpoint_name}" in messages
    )


# ---------------------------------------------------------------- A1: the private API


def test_a1_a_regional_api_without_the_source_vpce_deny_fails(dev: Synth) -> None:
    template, api = _copy(dev), _serving(dev).api

    def break_it(p: dict[str, Any]) -> None:
        p["EndpointConfiguration"] = {"Types": ["REGIONAL"]}
        p["Policy"]["Statement"] = [s for s in p["Policy"]["Statement"] if s["Effect"] == "Allow"]

    _set(template, dev, api.api, break_it)
    assert [m for _, m in _findings(template, "Rookery-A1")] == [
        "endpoint type ['REGIONAL'], not PRIVATE",
        "no VPC endpoint is associated with the API",
        "the resource policy does not deny calls from outside the VPC endpoint (aws:SourceVpce)",
    ]


def test_a1b_a_method_without_iam_authorization_fails(dev: Synth) -> None:
    template, api = _copy(dev), _serving(dev).api
    _set(template, dev, api.method, lambda p: p.update(AuthorizationType="NONE"))
    assert _findings(template, "Rookery-A1b") == [
        (dev.logical_id(api.method), "authorization 'NONE', not AWS_IAM")
    ]


def test_a1c_a_stage_without_encrypted_logs_tracing_or_firewall_fails(dev: Synth) -> None:
    template, api = _copy(dev), _serving(dev).api
    stage_id = dev.logical_id(api.stage)
    _set(template, dev, api.access_log_group, lambda p: p.pop("KmsKeyId"))
    _set(template, dev, api.stage, lambda p: p.update(TracingEnabled=False))
    for logical_id, resource in list(template["Resources"].items()):
        if resource["Type"] == "AWS::WAFv2::WebACLAssociation":
            del template["Resources"][logical_id]
    assert [m for _, m in _findings(template, "Rookery-A1c")] == [
        f"access log group ['{dev.logical_id(api.access_log_group)}'] is not encrypted with a customer key",
        "X-Ray tracing is off",
        "no WAF web ACL is associated with the stage",
    ]
    _set(template, dev, api.stage, lambda p: p.pop("AccessLogSetting"))
    assert (stage_id, "no access logs to a log group of this stack") in _findings(template, "Rookery-A1c")
