"""rookery's deployment rules (H5): CloudFormation is the only writer of the endpoint, through a role
scoped to the stack it updates.

No pack checks what a CloudFormation service role may do, nor who may update a stack with it:

- ``Rookery-H5``: a role CloudFormation assumes is trusted by CloudFormation of this account alone,
  allows no wildcard action, names its resources (``*`` only for the few reads that support no
  resource-level permissions), passes no role but SageMaker's (``iam:PassedToService``) and takes no
  other IAM action than Application Auto Scaling's service-linked role.
- ``Rookery-H5b``: whoever may update, create or delete a stack may do it on named stacks only and
  only through a given service role (``cloudformation:RoleArn``), and passes roles only to
  CloudFormation.
- ``Rookery-H5c``: no other role may change an endpoint (``CreateEndpoint``, ``UpdateEndpoint``,
  ``DeleteEndpoint``, weights and capacities): a change made outside the stack would be undone by
  the next stack update.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.template import (
    Template,
    as_list,
    condition_keys,
    flatten,
    props,
    resources,
    statements,
    target,
)

CLOUDFORMATION: Final = "cloudformation.amazonaws.com"
# The one IAM action besides PassRole a CloudFormation role of the Serving stack needs, and its condition.
SERVICE_LINKED_ROLE: Final = "iam:createservicelinkedrole"
# Stack operations that run with a service role (and must name one).
STACK_WRITES: Final = frozenset(
    {
        "cloudformation:updatestack",
        "cloudformation:createstack",
        "cloudformation:deletestack",
        "cloudformation:createchangeset",
        "cloudformation:executechangeset",
    }
)
# What a CloudFormation role may call on '*': reads that support no resource-level permissions.
UNSCOPED_READS: Final = frozenset(
    {"application-autoscaling:describescalabletargets", "application-autoscaling:describescalingpolicies"}
)
ENDPOINT_WRITES: Final = frozenset(
    {
        "sagemaker:createendpoint",
        "sagemaker:updateendpoint",
        "sagemaker:deleteendpoint",
        "sagemaker:updateendpointweightsandcapacities",
    }
)


def role_statements(template: Template) -> dict[str, list[Mapping[str, Any]]]:
    """Every allow or deny statement of each role of the template, from inline and attached policies."""
    roles = dict(resources(template, "AWS::IAM::Role"))
    found: dict[str, list[Mapping[str, Any]]] = {logical_id: [] for logical_id in roles}
    for logical_id, role in roles.items():
        for policy in as_list(props(role).get("Policies")):
            found[logical_id] += statements(policy.get("PolicyDocument"))
    for _, policy in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for attached in as_list(props(policy).get("Roles")):
            if target(attached) in found:
                found[str(target(attached))] += statements(props(policy).get("PolicyDocument"))
    return found


def trusted_services(role: Mapping[str, Any]) -> set[str]:
    return {
        flatten(service)
        for statement in statements(props(role).get("AssumeRolePolicyDocument"))
        if isinstance(statement.get("Principal"), Mapping)
        for service in as_list(statement["Principal"].get("Service"))
    }


def _actions(statement: Mapping[str, Any]) -> set[str]:
    return {a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}


def _matches(action: str, names: frozenset[str]) -> bool:
    """Whether an (possibly wildcard) action allows any of ``names``."""
    if "*" not in action:
        return action in names
    prefix = action.split("*", 1)[0]
    return any(name.startswith(prefix) for name in names)


def _condition(statement: Mapping[str, Any], key: str) -> list[str]:
    return [
        flatten(value)
        for block in (statement.get("Condition") or {}).values()
        for name, values in block.items()
        if name.lower() == key
        for value in as_list(values)
    ]


@rule(
    id="Rookery-H5",
    control="H5",
    title="CloudFormation service roles: trusted by CloudFormation of this account only, no wildcard "
    "actions or resources, PassRole only to SageMaker",
    fix="scope the role's statements to the stack's resources; condition PassRole on SageMaker",
)
def _deployment_roles(template: Template) -> Iterator[tuple[str, str]]:
    role_policies = role_statements(template)
    for logical_id, role in resources(template, "AWS::IAM::Role"):
        services = trusted_services(role)
        if CLOUDFORMATION not in services:
            continue
        for statement in statements(props(role).get("AssumeRolePolicyDocument")):
            principal = statement.get("Principal")
            if (
                not isinstance(principal, Mapping)
                or set(principal) != {"Service"}
                or services != {CLOUDFORMATION}
            ):
                yield logical_id, "the role is trusted by more than CloudFormation"
            elif "aws:sourceaccount" not in condition_keys(statement):
                yield logical_id, "CloudFormation of any account may assume the role (no aws:SourceAccount)"
        if props(role).get("ManagedPolicyArns"):
            yield logical_id, "a managed policy is attached: its statements cannot be checked here"
        for statement in role_policies[logical_id]:
            if statement.get("Effect") != "Allow":
                continue
            actions = _actions(statement)
            if wildcards := sorted(a for a in actions if "*" in a):
                yield logical_id, f"wildcard actions {wildcards}: name each action the stack's resources need"
            if "*" in (flatten(r) for r in as_list(statement.get("Resource"))) and (
                unscoped := sorted(actions - UNSCOPED_READS)
            ):
                yield logical_id, f"{unscoped} on every resource: name the stack's resources"
            if "iam:passrole" in actions:
                yield from _pass_role(logical_id, statement)
            for action in sorted(a for a in actions if a.startswith("iam:") and a != "iam:passrole"):
                if action != SERVICE_LINKED_ROLE or not _condition(statement, "iam:awsservicename"):
                    yield (
                        logical_id,
                        f"{action} lets a stack update change IAM beyond passing the model's role",
                    )


def _pass_role(logical_id: str, statement: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    services = _condition(statement, "iam:passedtoservice")
    if services != ["sagemaker.amazonaws.com"]:
        yield logical_id, f"iam:PassRole to {services or 'any service'}, not only to SageMaker"
    for resource in (flatten(r) for r in as_list(statement.get("Resource"))):
        name = resource.rsplit(":role/", 1)[-1] if ":role/" in resource else resource
        if name in ("*", "") or name.startswith("*"):
            yield logical_id, f"iam:PassRole on {resource}: name the model's role (or its path)"


@rule(
    id="Rookery-H5b",
    control="H5",
    title="Stack updates only on named stacks and only through a given CloudFormation service role",
    fix="resource: the stack's ARN; condition cloudformation:RoleArn on the service role",
)
def _stack_writes(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, role_policy in role_statements(template).items():
        for statement in role_policy:
            if statement.get("Effect") != "Allow":
                continue
            actions = _actions(statement)
            writes = sorted(a for a in actions if _matches(a, STACK_WRITES))
            if writes:
                if not _condition(statement, "cloudformation:rolearn"):
                    yield (
                        logical_id,
                        f"{writes} without a cloudformation:RoleArn condition: any role would do",
                    )
                if any(
                    flatten(r) == "*" or flatten(r).endswith(":stack/*")
                    for r in as_list(statement.get("Resource"))
                ):
                    yield logical_id, f"{writes} on every stack; name the stack it updates"
            if "iam:passrole" in actions and writes:
                yield logical_id, "stack writes and iam:PassRole in one statement; pass the role separately"


@rule(
    id="Rookery-H5c",
    control="H5",
    title="Only CloudFormation changes an endpoint: no other role may create, update or delete one",
    fix="deploy by updating the stack's model parameter; remove the endpoint-changing actions",
)
def _endpoint_writers(template: Template) -> Iterator[tuple[str, str]]:
    roles = dict(resources(template, "AWS::IAM::Role"))
    for logical_id, role_policy in role_statements(template).items():
        if trusted_services(roles[logical_id]) == {CLOUDFORMATION}:
            continue
        for statement in role_policy:
            if statement.get("Effect") != "Allow":
                continue
            writes = sorted(a for a in _actions(statement) if _matches(a, ENDPOINT_WRITES))
            if writes:
                yield logical_id, f"{writes} would change an endpoint outside its stack"
