"""Controls A1 and H3 on the synthesized ``Rookery-<stage>-Serving``: the private inference API.

Read from the template of every shipped stage; expectations come from the stage config and the
construct objects, never from hard-coded logical ids.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from typing import Any

import pytest
from infra_testing import Synth, arn_of, ref, resources

from infra.audit.template import flatten
from infra.constructs.inference_api import (
    ACCESS_LOG_FIELDS,
    ERROR_RESPONSES,
    WAF_REDACTED_HEADERS,
    InferenceApi,
    greater_than_pattern,
    invoke_endpoint_payload_limit,
)
from rookery_image.contract import MAX_PAYLOAD_BYTES
from stage.names import API_STAGE_NAME, api_name, endpoint_name

pytestmark = pytest.mark.xdist_group("infra-synth")


def _api(synth: Synth) -> InferenceApi:
    assert synth.stacks.serving is not None
    return synth.stacks.serving.api


def _env(synth: Synth) -> tuple[str, str, str]:
    if synth.stage.account:
        return "aws", synth.stage.region, synth.stage.account
    return "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"


def _execute_api_output(synth: Synth) -> dict[str, Any]:
    """The weak reference to the Network stack's execute-api endpoint id."""
    endpoint = synth.logical_id(synth.stacks.network.network.interface_endpoints["execute-api"])
    outputs = [
        name
        for name in synth.network.get("Outputs", {})
        if endpoint in name and name.startswith("PublishOutput")
    ]
    [output] = outputs
    region: Any = synth.stage.region if synth.stage.account else {"Ref": "AWS::Region"}
    return {
        "Fn::GetStackOutput": {
            "StackName": synth.stage.stack_name("Network"),
            "Region": region,
            "OutputName": output,
        }
    }


def _method(synth: Synth) -> Mapping[str, Any]:
    return synth.props(_api(synth).method)


def _logs_key(synth: Synth, value: Any) -> None:
    output = value["Fn::GetStackOutput"]
    assert output["StackName"] == synth.stage.stack_name("Data")
    assert synth.logical_id(synth.stacks.data.keys.logs) in output["OutputName"]


# ---------------------------------------------------------------- private, IAM, resource policy


def test_the_api_is_private_and_associated_with_the_execute_api_endpoint(synth: Synth) -> None:
    api = synth.props(_api(synth).api)
    assert api["Name"] == api_name(synth.stage)
    assert api["EndpointConfiguration"] == {
        "Types": ["PRIVATE"],
        "VpcEndpointIds": [_execute_api_output(synth)],
    }


def test_the_resource_policy_admits_only_this_account_through_the_vpc_endpoint(synth: Synth) -> None:
    statements = synth.props(_api(synth).api)["Policy"]["Statement"]
    partition, _, account = _env(synth)
    allow, deny = statements
    assert allow["Effect"] == "Allow" and allow["Action"] == "execute-api:Invoke"
    assert flatten(allow["Principal"]["AWS"]) == f"arn:{partition}:iam::{account}:root"
    assert allow["Resource"] == "execute-api:/*" and "Condition" not in allow
    assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Resource"]) == (
        "Deny",
        {"AWS": "*"},
        "execute-api:Invoke",
        "execute-api:/*",
    )
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceVpce": _execute_api_output(synth)}}


def test_invocations_need_sigv4_an_api_key_and_a_content_type(synth: Synth) -> None:
    method = _method(synth)
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["ApiKeyRequired"] is True
    assert method["RequestParameters"] == {
        "method.request.header.Content-Type": True,
        "method.request.header.Accept": False,
        "method.request.header.X-Amzn-SageMaker-Inference-Id": False,
    }
    resource = synth.resource(_api(synth).method.resource)
    assert resource["Properties"]["PathPart"] == "invocations"
    [validator] = resources(synth.serving, "AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestParameters"] is True
    assert method["RequestValidatorId"] == ref(
        next(
            k
            for k, v in resources(synth.serving, "AWS::ApiGateway::RequestValidator").items()
            if v is validator
        )
    )
    assert len(resources(synth.serving, "AWS::ApiGateway::Method")) == 1  # nothing else is exposed


# ---------------------------------------------------------------- the integration (H3)


def test_a_direct_sagemaker_runtime_integration_that_passes_the_body_and_headers(synth: Synth) -> None:
    integration = _method(synth)["Integration"]
    partition, region, _ = _env(synth)
    assert integration["Type"] == "AWS"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert flatten(integration["Uri"]) == (
        f"arn:{partition}:apigateway:{region}:runtime.sagemaker:path/endpoints/"
        f"{endpoint_name(synth.stage)}/invocations"
    )
    assert integration["Credentials"] == arn_of(synth.logical_id(_api(synth).integration_role))
    assert integration["RequestParameters"] == {
        f"integration.request.header.{h}": f"method.request.header.{h}"
        for h in ("Content-Type", "Accept", "X-Amzn-SageMaker-Inference-Id")
    }
    # No request template: the records reach the model byte for byte.
    assert "RequestTemplates" not in integration
    assert integration["PassthroughBehavior"] == "WHEN_NO_TEMPLATES"


def test_the_integration_role_may_invoke_this_endpoint_and_nothing_else(synth: Synth) -> None:
    role = _api(synth).integration_role
    props = synth.props(role)
    [trust] = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "ManagedPolicyArns" not in props
    statements = [
        s
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    partition, region, account = _env(synth)
    assert statements == [
        {
            "Sid": "InvokeTheEndpoint",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": statements[0]["Resource"],
        }
    ]
    assert flatten(statements[0]["Resource"]) == (
        f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{endpoint_name(synth.stage)}"
    )


def test_no_other_identity_policy_of_the_stage_may_invoke_an_endpoint(synth: Synth) -> None:
    """H3: InvokeEndpoint is granted to the API's integration role only (boundaries grant nothing)."""
    integration = synth.logical_id(_api(synth).integration_role)
    for stack in synth.assembly.stacks:
        template = stack.template
        boundaries = {
            r["Properties"]["PermissionsBoundary"].get("Ref")
            for r in resources(template, "AWS::IAM::Role").values()
            if isinstance(r["Properties"].get("PermissionsBoundary"), Mapping)
        }
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for logical_id, policy in resources(template, kind).items():
                if logical_id in boundaries:
                    continue
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions = statement.get("Action", [])
                    actions = actions if isinstance(actions, list) else [actions]
                    invokes = any(fnmatch.fnmatchcase("sagemaker:InvokeEndpoint", a) for a in actions)
                    if statement["Effect"] == "Allow" and invokes:
                        roles = policy["Properties"].get("Roles", [])
                        assert roles == [ref(integration)], (stack.name, logical_id)


# ---------------------------------------------------------------- the answers


def test_predictions_pass_through_with_their_content_type_and_serving_variant(synth: Synth) -> None:
    responses = _method(synth)["Integration"]["IntegrationResponses"]
    [default] = [r for r in responses if "SelectionPattern" not in r]
    assert default == {
        "StatusCode": "200",
        "ResponseParameters": {
            "method.response.header.Content-Type": "integration.response.header.Content-Type",
            "method.response.header.X-Amzn-Invoked-Production-Variant": (
                "integration.response.header.X-Amzn-Invoked-Production-Variant"
            ),
        },
    }  # no template: the body is the model's, byte for byte
    [ok] = [r for r in _method(synth)["MethodResponses"] if r["StatusCode"] == "200"]
    assert set(ok["ResponseParameters"]) == set(default["ResponseParameters"])


def test_errors_map_as_documented(synth: Synth) -> None:
    responses = {
        r["SelectionPattern"]: r
        for r in _method(synth)["Integration"]["IntegrationResponses"]
        if "SelectionPattern" in r
    }
    assert {
        p: (int(r["StatusCode"]), r["ResponseTemplates"]["application/json"]) for p, r in responses.items()
    } == {e.pattern: (e.status, e.template) for e in ERROR_RESPONSES}
    declared = {int(r["StatusCode"]) for r in _method(synth)["MethodResponses"]}
    assert declared == {200, 400, 413, 429, 502}
    model_error = responses["424"]["ResponseTemplates"]["application/json"]
    # The model's 4xx: its status and its own body; otherwise 502 with the request id.
    assert "#set($context.responseOverride.status = $status)" in model_error
    assert "$status >= 400 && $status < 500" in model_error
    assert "$input.path('$.OriginalStatusCode')" in model_error
    assert "$input.path('$.OriginalMessage')" in model_error
    assert "$context.requestId" in model_error.split("#else", 1)[1]
    assert "$context.requestId" in responses["5[0-9][0-9]"]["ResponseTemplates"]["application/json"]
    assert responses["5[0-9][0-9]"]["StatusCode"] == "502"
    assert responses["400"]["StatusCode"] == "400"


# ---------------------------------------------------------------- the stage: throttling, logs, tracing


def test_the_stage_throttles_traces_and_logs_execution_without_payloads(synth: Synth) -> None:
    api = _api(synth)
    stage = synth.resource(api.stage)
    props = stage["Properties"]
    settings = synth.stage.serving.api
    assert props["StageName"] == API_STAGE_NAME
    assert props["TracingEnabled"] is True
    assert props["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingRateLimit": settings.throttle_rate_per_second,
            "ThrottlingBurstLimit": settings.throttle_burst,
            "LoggingLevel": "INFO",
            "DataTraceEnabled": False,
            "MetricsEnabled": True,
        }
    ]
    assert "CacheClusterEnabled" not in props
    assert set(stage["DependsOn"]) >= {
        synth.logical_id(api.execution_log_group),
        synth.logical_id(api.logging.account),
    }


def test_access_logs_are_json_in_a_kms_encrypted_log_group(synth: Synth) -> None:
    api = _api(synth)
    setting = synth.props(api.stage)["AccessLogSetting"]
    assert f"<{synth.logical_id(api.access_log_group)}>" in flatten(setting["DestinationArn"])
    fields = json.loads(setting["Format"])
    assert fields == dict(ACCESS_LOG_FIELDS)
    assert {"requestId", "status", "sourceVpce", "user", "integrationStatus", "wafResponseCode"} <= set(
        fields
    )
    for group in (api.access_log_group, api.execution_log_group, api.firewall.log_group):
        props = synth.props(group)
        _logs_key(synth, props["KmsKeyId"])
        assert props["RetentionInDays"] == synth.stage.log_retention_days


def test_the_execution_log_group_is_the_one_api_gateway_writes_to(synth: Synth) -> None:
    api = _api(synth)
    name = synth.props(api.execution_log_group)["LogGroupName"]
    assert flatten(name) == f"API-Gateway-Execution-Logs_<{synth.logical_id(api.api)}>/{API_STAGE_NAME}"


def test_the_account_setting_lets_api_gateway_log_this_regions_apis_and_survives_teardown(
    synth: Synth,
) -> None:
    logging = _api(synth).logging
    account = synth.resource(logging.account)
    assert account["Properties"]["CloudWatchRoleArn"] == arn_of(synth.logical_id(logging.role))
    assert (account["DeletionPolicy"], synth.resource(logging.role)["DeletionPolicy"]) == ("Retain", "Retain")
    [statement] = [
        s
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(logging.role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    partition, region, account_id = _env(synth)
    assert flatten(statement["Resource"]) == f"arn:{partition}:logs:{region}:{account_id}:*"
    assert all(a.startswith("logs:") for a in statement["Action"])


def test_the_usage_plan_carries_the_stages_throttle_and_daily_quota_for_the_client_key(synth: Synth) -> None:
    api = _api(synth)
    settings = synth.stage.serving.api
    plan = synth.props(api.usage_plan)
    assert plan["Throttle"] == {
        "RateLimit": settings.throttle_rate_per_second,
        "BurstLimit": settings.throttle_burst,
    }
    assert plan["Quota"] == {"Limit": settings.quota_per_day, "Period": "DAY"}
    [api_stage] = plan["ApiStages"]
    assert (api_stage["ApiId"], api_stage["Stage"]) == (
        ref(synth.logical_id(api.api)),
        ref(synth.logical_id(api.stage)),
    )
    [key] = resources(synth.serving, "AWS::ApiGateway::UsagePlanKey").values()
    assert key["Properties"]["UsagePlanId"] == ref(synth.logical_id(api.usage_plan))
    assert key["Properties"]["KeyId"] == ref(synth.logical_id(api.api_key))


def test_the_invoke_policy_names_post_invocations_of_this_api_and_stage(synth: Synth) -> None:
    api = _api(synth)
    [statement] = synth.props(api.invoke_policy)["PolicyDocument"]["Statement"]
    partition, region, account = _env(synth)
    assert statement["Action"] == "execute-api:Invoke"
    assert flatten(statement["Resource"]) == (
        f"arn:{partition}:execute-api:{region}:{account}:<{synth.logical_id(api.api)}>/{API_STAGE_NAME}/POST/invocations"
    )


# ---------------------------------------------------------------- the request size limit


def test_the_limit_is_the_endpoints_payload_limit() -> None:
    assert invoke_endpoint_payload_limit() == 6 * 1024 * 1024 == MAX_PAYLOAD_BYTES


def test_a_firewall_on_the_stage_answers_413_above_the_limit(synth: Synth) -> None:
    api = _api(synth)
    acl = synth.props(api.firewall.web_acl)
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    [rule] = acl["Rules"]
    assert rule["Action"] == {
        "Block": {"CustomResponse": {"ResponseCode": 413, "CustomResponseBodyKey": "payload-too-large"}}
    }
    statement = rule["Statement"]["RegexMatchStatement"]
    assert statement["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    assert statement["RegexString"] == greater_than_pattern(invoke_endpoint_payload_limit())
    assert json.loads(acl["CustomResponseBodies"]["payload-too-large"]["Content"])["message"]
    [association] = resources(synth.serving, "AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"] == {
        "Fn::GetAtt": [synth.logical_id(api.firewall.web_acl), "Arn"]
    }
    arn = flatten(association["Properties"]["ResourceArn"])
    assert arn.endswith(f"::/restapis/<{synth.logical_id(api.api)}>/stages/<{synth.logical_id(api.stage)}>")


def test_the_firewall_logs_to_its_encrypted_group_without_credentials(synth: Synth) -> None:
    firewall = _api(synth).firewall
    logging = synth.props(firewall.logging)
    assert logging["ResourceArn"] == {"Fn::GetAtt": [synth.logical_id(firewall.web_acl), "Arn"]}
    [destination] = logging["LogDestinationConfigs"]
    assert flatten(destination).endswith(f":log-group:<{synth.logical_id(firewall.log_group)}>")
    assert synth.props(firewall.log_group)["LogGroupName"] == f"aws-waf-logs-{api_name(synth.stage)}"
    assert logging["RedactedFields"] == [{"SingleHeader": {"Name": h}} for h in WAF_REDACTED_HEADERS]
    assert {"authorization", "x-api-key"} <= set(WAF_REDACTED_HEADERS)
