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
