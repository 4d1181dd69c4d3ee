"""Control A1 (and H3): the private REST API in front of the endpoint.

Secure defaults, each proven by a test:

- **Private**: endpoint type PRIVATE, associated with the VPC's ``execute-api`` interface endpoint; the
  resource policy denies every call that does not arrive through that endpoint (``aws:SourceVpce``)
  and grants the rest to this account only, so a caller also needs an IAM allow here.
- **IAM authorization** (SigV4) and an API key on ``POST /invocations``: the key only identifies the
  client for the usage plan's quota; IAM authenticates. Stage throttling caps everyone together.
- **A direct service integration** to ``runtime.sagemaker`` InvokeEndpoint (no Lambda in between)
  that passes the body through untouched with its ``Content-Type`` and ``Accept`` (and an optional
  ``X-Amzn-SageMaker-Inference-Id``, which data capture records), signed with an integration role
  that may invoke this one endpoint only.
- **Answers** (``ERROR_RESPONSES``): the prediction as the model wrote it; the model's own 4xx with its
  status and body; SageMaker's validation errors as 400 and throttling as 429; everything that is
  the service's or the API's fault (SageMaker 5xx, the model's 5xx, any other 4xx) as 502 with the
  request id.
- **Request size**: the same limit as the endpoint (SageMaker's InvokeEndpoint body limit). A WAF web
  ACL on the stage answers 413 to a request whose ``Content-Length`` exceeds it, before API Gateway
  or SageMaker do any work. WAF reads at most 64 KB of a body, so a request without
  ``Content-Length`` (chunked) is bounded by API Gateway's fixed 10 MB limit and then by SageMaker,
  which refuses a body over its limit (passed on as 400 or 413).
- **Logs**: JSON access logs and execution logs (errors and request metadata; never payloads) in
  log groups encrypted with the logs key, WAF logs likewise (credentials redacted); X-Ray tracing;
  detailed metrics.

The API exists before any model is approved: clients, policies and the VPC endpoint association can
be set up on day one, and until the endpoint exists a call answers 400 with SageMaker's message
that the endpoint was not found.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import botocore.session
from aws_cdk import ArnFormat, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_inline_policy
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.policies import Grant, attach
from infra.constructs.props import PropsError, check_retention

INVOCATIONS_PATH: Final = "invocations"
# Request headers passed to InvokeEndpoint (True: the method requires it).
FORWARDED_HEADERS: Final[Mapping[str, bool]] = MappingProxyType(
    {"Content-Type": True, "Accept": False, "X-Amzn-SageMaker-Inference-Id": False}
)
# Response headers of a prediction passed back to the client.
RETURNED_HEADERS: Final = ("Content-Type", "X-Amzn-Invoked-Production-Variant")
_STAGE_NAME: Final = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_WEB_ACL_NAME: Final = re.compile(r"^[\w-]{1,128}$")
_ESCAPED = '$util.escapeJavaScript("$!message").replaceAll("\\\\\'", "\'")'


@dataclass(frozen=True)
class ErrorResponse:
    """How the API answers when InvokeEndpoint answers with a status matching ``pattern``."""

    pattern: str  # API Gateway's selectionPattern, matched against SageMaker's HTTP status
    status: int  # the status the client sees (a template may override it)
    template: str  # the response body (Velocity, application/json)
    reason: str


_MESSAGE = (
    "#set($message = $input.path('$.message'))"
    '#if("$!message" == "")#set($message = $input.path(\'$.Message\'))#end'
    f'{{"message": "{_ESCAPED}", "requestId": "$context.requestId"}}'
)
_BAD_GATEWAY = (
    '{"message": "the model endpoint could not answer; quote the request id when you report it", '
    '"requestId": "$context.requestId"}'
)
# SageMaker's ModelError (424): the model answered with an error status of its own. A 4xx is the
# client's problem and goes back unchanged, body included; a 5xx is the model's failure.
_MODEL_ERROR = (
    "#set($status = $input.path('$.OriginalStatusCode'))"
    "#if($status >= 400 && $status < 500)"
    "#set($context.responseOverride.status = $status)"
    "$input.path('$.OriginalMessage')"
    f"#else{_BAD_GATEWAY}#end"
)
# Every 4xx but 400, 413, 424 and 429 (which have answers of their own).
OTHER_CLIENT_ERRORS: Final = "4(0[1-9]|1[0-24-9]|2[0-35-8]|[3-9][0-9])"

ERROR_RESPONSES: Final = (
    ErrorResponse(
        "400",
        400,
        _MESSAGE,
        "SageMaker's ValidationError: the request is invalid (or no endpoint exists yet)",
    ),
    ErrorResponse("413", 413, _MESSAGE, "the body exceeds SageMaker's payload limit"),
    ErrorResponse(
        "424",
        502,
        _MODEL_ERROR,
        "the model answered an error: its 4xx (status and body) goes back to the client, its 5xx as 502",
    ),
    ErrorResponse("429", 429, _MESSAGE, "SageMaker throttled the call; the client may retry later"),
    ErrorResponse(
        OTHER_CLIENT_ERRORS,
        502,
        _BAD_GATEWAY,
        "any other 4xx from SageMaker means the integration itself is refused (its role or the "
        "endpoint's state), not the client's request",
    ),
    ErrorResponse(
        "5[0-9][0-9]", 502, _BAD_GATEWAY, "SageMaker failed; the request id finds the call in the logs"
    ),
)

# Access log fields (all strings, so the format is valid JSON as written).
ACCESS_LOG_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "caller": "$context.identity.caller",
        "user": "$context.identity.userArn",
        "apiKeyId": "$context.identity.apiKeyId",
        "sourceVpce": "$context.identity.vpceId",
        "sourceIp": "$context.identity.sourceIp",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatencyMs": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatencyMs": "$context.integration.latency",
        "integrationError": "$context.integration.error",
        "errorMessage": "$context.error.message",
        "wafResponseCode": "$context.wafResponseCode",
        "xrayTraceId": "$context.xrayTraceId",
    }
)
# Headers WAF must not write to its logs: credentials and the client's key.
WAF_REDACTED_HEADERS: Final = ("authorization", "x-amz-security-token", "x-api-key")
EXECUTION_LOG_GROUP_PREFIX: Final = "API-Gateway-Execution-Logs_"


def greater_than_pattern(limit: int) -> str:
    """A regular expression that matches a decimal integer (leading zeros allowed) greater than ``limit``."""
    if limit < 0:
        raise ValueError(f"limit = {limit}: must not be negative")
    digits = str(limit)
    alternatives = [f"[1-9][0-9]{{{len(digits)},}}"]  # more digits than the limit has
    for i, digit in enumerate(digits):
        if digit == "9":
            continue  # no greater digit in this position
        low = int(digit) + 1
        rest = len(digits) - i - 1
        tail = "" if rest == 0 else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
        alternatives.append(digits[:i] + (f"[{low}-9]" if low < 9 else "9") + tail)
    return "^0*(" + "|".join(alternatives) + ")$"


@functools.cache
def invoke_endpoint_payload_limit() -> int:
    """SageMaker's InvokeEndpoint body limit in bytes, as the service model botocore ships states it."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    return int(model.shape_for("BodyBlob").metadata["max"])


def _check_positive(props: object, field: str) -> None:
    if getattr(props, field) <= 0:
        raise PropsError(props, field, "must be positive; an API without this limit is not an option")


@dataclass(frozen=True, kw_only=True)
class InferenceApiProps:
    """The API's settings; private, IAM, the integration's scope and logging are not options."""

    api_name: str
    stage_name: str
    endpoint_name: str
    throttle_rate_per_second: float
    throttle_burst: int
    quota_per_day: int
    max_payload_bytes: int = field(default_factory=invoke_endpoint_payload_limit)
    """Secure default: the endpoint's own limit, SageMaker's InvokeEndpoint body limit (6 MB); larger
    requests get 413 from the firewall before they cost anything. Lower it to protect a slow model."""
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of access, execution and WAF logs."""

    def __post_init__(self) -> None:
        if not _STAGE_NAME.match(self.stage_name):
            raise PropsError(self, "stage_name", "letters, digits and '_' only, e.g. 'v1'")
        if not self.endpoint_name:
            raise PropsError(self, "endpoint_name", "name the endpoint the API invokes")
        for limit in ("throttle_rate_per_second", "throttle_burst", "quota_per_day", "max_payload_bytes"):
            _check_positive(self, limit)
        if self.throttle_burst < self.throttle_rate_per_second:
            raise PropsError(
                self,
                "throttle_burst",
                f"below the rate ({self.throttle_rate_per_second}/s), every second would be throttled; "
                "raise it",
            )
        if self.max_payload_bytes > invoke_endpoint_payload_limit():
            raise PropsError(
                self,
                "max_payload_bytes",
                f"above SageMaker's limit ({invoke_endpoint_payload_limit()} bytes), which refuses such "
                "requests anyway; use that limit or less",
            )
        check_retention(self)


@dataclass(frozen=True, kw_only=True)
class PayloadLimitProps:
    name: str  # the web ACL's name (and of its log group, after aws-waf-logs-)
    max_payload_bytes: int
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of WAF logs."""

    def __post_init__(self) -> None:
        if not _WEB_ACL_NAME.match(self.name):
            raise PropsError(self, "name", "1-128 letters, digits, '_' or '-' (a WAF web ACL name)")
        _check_positive(self, "max_payload_bytes")
        check_retention(self)


class ApiGatewayLogging(Construct):
    """The account's API Gateway setting that lets it write execution and access logs.

    One setting per account and region, shared by every REST API there: the role may write any log
    group of this account and region (other APIs keep logging), and both survive ``cdk destroy`` so
    that deleting this stage never silences another API's logs.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway (account setting): write execution and access logs of this region",
        )
        attach(
            self.role,
            [
                Grant(
                    "WriteApiLogs",
                    (
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                        "logs:GetLogEvents",
                        "logs:FilterLogEvents",
                    ),
                    (stack.format_arn(service="logs", resource="*"),),
                    "the account's API Gateway logging role serves every REST API of the region, whose "
                    "execution log groups (API-Gateway-Execution-Logs_<api>/<stage>) and access log "
                    "groups are named per API; scoped to this account and region",
                )
            ],
        )
        acknowledge_inline_policy(
            self.role,
            "the API Gateway logging role's policy exists for this one role (the account setting); a "
            "managed copy could be attached to other principals",
        )
        self.account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        for resource in (self.role, self.account):
            resource.apply_removal_policy(RemovalPolicy.RETAIN)


class PayloadLimitFirewall(Construct):
    """A WAF web ACL that answers 413 to requests declaring a body over ``limit`` bytes.

    Exposes ``web_acl`` and ``log_group``; ``protect(stage)`` associates it with an API stage.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: PayloadLimitProps,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        name, limit, log_retention_days = props.name, props.max_payload_bytes, props.log_retention_days
        metric = re.sub(r"[^A-Za-z0-9]", "", name)
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=name,
            description=f"{name} refuses request bodies over {limit} bytes, the endpoint limit",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            custom_response_bodies={
                "payload-too-large": wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=json.dumps(
                        {"message": f"the request body is larger than the endpoint's limit of {limit} bytes"}
                    ),
                )
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="PayloadTooLarge",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(
                        block=wafv2.CfnWebACL.BlockActionProperty(
                            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                                response_code=413, custom_response_body_key="payload-too-large"
                            )
                        )
                    ),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                            regex_string=greater_than_pattern(limit),
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                single_header={"Name": "content-length"}
                            ),
                            text_transformations=[
                                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                            ],
                        )
                    ),
                    visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                        cloud_watch_metrics_enabled=True,
                        metric_name=f"{metric}PayloadTooLarge",
                        sampled_requests_enabled=False,
                    ),
                )
            ],
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=False
            ),
        )
        # WAF delivers only to log groups whose name starts with aws-waf-logs-.
        self.log_group = encrypted_log_group(
            self, "LogGroup", key=logs_key, days=log_retention_days, name=f"aws-waf-logs-{name}"
        )
        self.logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=self.log_group.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in WAF_REDACTED_HEADERS
            ],
        )

    def protect(self, stage: apigw.Stage) -> wafv2.CfnWebACLAssociation:
        return wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )


class InferenceApi(Construct):
    """Exposes ``api``, ``stage``, ``method``, ``integration_role``, ``usage_plan``, ``api_key``,
    ``firewall``, ``access_log_group``, ``execution_log_group``, ``logging`` (the account setting) and
    ``invoke_policy`` (attach it to the roles that may call the API)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: InferenceApiProps,
        vpc_endpoint: ec2.IVpcEndpoint,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=props.endpoint_name
        )
        self.logging = ApiGatewayLogging(self, "Logging")
        self.access_log_group = encrypted_log_group(
            self, "AccessLogGroup", key=logs_key, days=props.log_retention_days
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=props.api_name,
            description=f"{props.api_name}: inference on {props.endpoint_name} (IAM, VPC endpoint only)",
            endpoint_configuration=apigw.EndpointConfiguration(
                types=[apigw.EndpointType.PRIVATE], vpc_endpoints=[vpc_endpoint]
            ),
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="InvokeFromThisAccount",
                        principals=[iam.AccountRootPrincipal()],
                        actions=["execute-api:Invoke"],
                        resources=["execute-api:/*"],
                    ),
                    iam.PolicyStatement(
                        sid="DenyOutsideVpcEndpoint",
                        effect=iam.Effect.DENY,
                        principals=[iam.AnyPrincipal()],
                        actions=["execute-api:Invoke"],
                        resources=["execute-api:/*"],
                        conditions={"StringNotEquals": {"aws:SourceVpce": vpc_endpoint.vpc_endpoint_id}},
                    ),
                ]
            ),
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            cloud_watch_role=False,  # the account setting is ApiGatewayLogging's
            fail_on_warnings=True,
            deploy=True,
            deploy_options=apigw.StageOptions(
                stage_name=props.stage_name,
                throttling_rate_limit=props.throttle_rate_per_second,
                throttling_burst_limit=props.throttle_burst,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,  # never write request or response bodies to the logs
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(dict(ACCESS_LOG_FIELDS))),
            ),
        )
        self.stage = self.api.deployment_stage
        # API Gateway would create its execution log group itself, unencrypted and kept forever.
        self.execution_log_group = encrypted_log_group(
            self,
            "ExecutionLogGroup",
            key=logs_key,
            days=props.log_retention_days,
            name=Fn.join("", [EXECUTION_LOG_GROUP_PREFIX, self.api.rest_api_id, "/", props.stage_name]),
        )
        self.stage.node.add_dependency(self.execution_log_group, self.logging.account)

        self.integration_role = iam.Role(
            self,
            "IntegrationRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description=f"{props.api_name}: InvokeEndpoint on {props.endpoint_name} only",
        )
        attach(
            self.integration_role,
            [
                Grant(
                    "InvokeTheEndpoint",
                    ("sagemaker:InvokeEndpoint",),
                    (endpoint_arn,),
                    f"the API's integration calls InvokeEndpoint on {props.endpoint_name}, nothing else",
                )
            ],
        )
        acknowledge_inline_policy(
            self.integration_role,
            "the integration role's one statement names this API's endpoint; a managed copy could be "
            "attached to other principals",
        )
        self.method = self._invocations(props)
        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{props.api_name}-clients",
            description=f"{props.api_name}: stage throttling and a daily quota per client key",
            throttle=apigw.ThrottleSettings(
                rate_limit=props.throttle_rate_per_second, burst_limit=props.throttle_burst
            ),
            quota=apigw.QuotaSettings(limit=props.quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.stage)],
        )
        self.api_key = self.api.add_api_key("ClientKey", description=f"{props.api_name}: the stage's clients")
        self.usage_plan.add_api_key(self.api_key)
        self.firewall = PayloadLimitFirewall(
            self,
            "Firewall",
            props=PayloadLimitProps(
                name=props.api_name,
                max_payload_bytes=props.max_payload_bytes,
                log_retention_days=props.log_retention_days,
            ),
            logs_key=logs_key,
        )
        self.firewall.protect(self.stage)
        self.invoke_policy = iam.ManagedPolicy(
            self,
            "InvokePolicy",
            description=f"{props.api_name}: call POST /{INVOCATIONS_PATH} (attach to the clients' roles)",
            statements=[
                iam.PolicyStatement(
                    sid="InvokeInference",
                    actions=["execute-api:Invoke"],
                    resources=[
                        self.api.arn_for_execute_api("POST", f"/{INVOCATIONS_PATH}", props.stage_name)
                    ],
                )
            ],
        )
        self._acknowledge(props)

    def _invocations(self, props: InferenceApiProps) -> apigw.Method:
        integration = apigw.AwsIntegration(
            service="runtime.sagemaker",
            path=f"endpoints/{props.endpoint_name}/{INVOCATIONS_PATH}",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.integration_role,
                passthrough_behavior=apigw.PassthroughBehavior.WHEN_NO_TEMPLATES,
                request_parameters={
                    f"integration.request.header.{h}": f"method.request.header.{h}" for h in FORWARDED_HEADERS
                },
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="200",
                        response_parameters={
                            f"method.response.header.{h}": f"integration.response.header.{h}"
                            for h in RETURNED_HEADERS
                        },
                    ),
                    *(
                        apigw.IntegrationResponse(
                            selection_pattern=error.pattern,
                            status_code=str(error.status),
                            response_templates={"application/json": error.template},
                        )
                        for error in ERROR_RESPONSES
                    ),
                ],
            ),
        )
        validator = self.api.add_request_validator(
            "HeaderValidator",
            request_validator_name=f"{props.api_name}-headers",
            validate_request_parameters=True,
            validate_request_body=False,
        )
        statuses = sorted({200, *(e.status for e in ERROR_RESPONSES)})
        return self.api.root.add_resource(INVOCATIONS_PATH).add_method(
            "POST",
            integration,
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=True,
            request_validator=validator,
            request_parameters={
                f"method.request.header.{h}": required for h, required in FORWARDED_HEADERS.items()
            },
            method_responses=[
                apigw.MethodResponse(
                    status_code=str(status),
                    response_parameters=(
                        {f"method.response.header.{h}": True for h in RETURNED_HEADERS}
                        if status == 200
                        else None
                    ),
                )
                for status in statuses
            ],
        )

    def _acknowledge(self, props: InferenceApiProps) -> None:
        acknowledge(
            self.api,
            "AwsSolutions::AwsSolutions-APIG2",
            "the validator checks the required Content-Type header; the body is raw CSV or JSON records "
            "that the model validates itself, answering 4xx with the record and field (passed through)",
        )
        acknowledge(
            self.method,
            "AwsSolutions::AwsSolutions-COG4",
            "callers are AWS principals of this account authorized with SigV4 (AWS_IAM) through the VPC "
            "endpoint; there are no end users and no Cognito user pool",
        )
        acknowledge(
            self.stage,
            "NIST.800.53.R5::NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
            "POST /invocations returns a prediction for the records sent; answers are never cached (no "
            "cache cluster, so no cached data to encrypt)",
        )
        acknowledge(
            self.stage,
            "NIST.800.53.R5::NIST.800.53.R5-APIGWSSLEnabled",
            "the only integration is the SageMaker runtime service, called over HTTPS with SigV4 by the "
            "integration role; a client certificate authenticates API Gateway to HTTP back ends only",
        )
