"""The functions' configuration: every environment variable they read, validated once at cold start.

Environment (set by the deployer construct, the same for every task):

``SERVING_STACK`` (required)
    the Serving stack's name or id, e.g. ``Rookery-dev-Serving``.
``MODEL_PARAMETER_NAME`` (required)
    its parameter holding the live model package version, e.g. ``ApprovedModelPackageArn``.
``BASELINE_PARAMETER_NAME`` (required)
    its parameter holding the live version's monitoring baseline, set in the same update, e.g.
    ``MonitoringBaselineUri``.
``DEPLOYMENT_ROLE_ARN`` (required)
    the CloudFormation service role every update passes (the functions may pass no other).
``MODEL_PACKAGE_GROUP_NAME`` (required)
    the stage's model package group, e.g. ``rookery-dev-models``.
``ENDPOINT_NAME`` and ``VARIANT_NAME`` (required)
    the endpoint the stack owns and its production variant, read to verify a deployment.
``DEPLOYMENT_EVENT_SOURCE``, ``DEPLOYMENT_EVENT_TYPE`` and ``DEPLOYMENT_METRIC_NAMESPACE`` (required)
    the published outcome: EventBridge source and detail-type, CloudWatch namespace.
``POWERTOOLS_SERVICE_NAME`` (optional, default ``model_deployer``) and the other ``POWERTOOLS_*``
variables Powertools reads itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rookery_contracts.env import (
    BASELINE_PARAMETER_ENV,
    DEPLOYMENT_EVENT_SOURCE_ENV,
    DEPLOYMENT_EVENT_TYPE_ENV,
    DEPLOYMENT_METRIC_NAMESPACE_ENV,
    DEPLOYMENT_ROLE_ENV,
    ENDPOINT_NAME_ENV,
    MODEL_PACKAGE_GROUP_ENV,
    MODEL_PARAMETER_ENV,
    POWERTOOLS_SERVICE_ENV,
    SERVING_STACK_ENV,
    VARIANT_NAME_ENV,
)

DEFAULT_SERVICE = "model_deployer"

# The request shapes of the APIs the functions call (botocore's models).
_STACK = re.compile(
    r"^([a-zA-Z][-a-zA-Z0-9]{0,127}|arn:aws[-a-z]*:cloudformation:[-a-z0-9]+:[0-9]{12}:stack/[a-zA-Z][-a-zA-Z0-9]*/[-a-f0-9]+)$"
)
_PARAMETER = re.compile(r"^[A-Za-z0-9]{1,255}$")
_ROLE_ARN = re.compile(r"^arn:aws[-a-z]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_VARIANT = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class ConfigurationError(RuntimeError):
    """The functions' environment is incomplete or wrong; the message names the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    stack: str
    model_parameter: str
    baseline_parameter: str
    deployment_role_arn: str
    model_package_group: str
    endpoint_name: str
    variant_name: str
    event_source: str
    event_type: str
    metric_namespace: str
    service: str = DEFAULT_SERVICE


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the environment; raise ``ConfigurationError`` naming the variable."""
    stack = _matching(
        environ, SERVING_STACK_ENV, _STACK, "the Serving stack's name, e.g. 'Rookery-dev-Serving'"
    )
    parameter = _matching(
        environ,
        MODEL_PARAMETER_ENV,
        _PARAMETER,
        "the stack's model parameter, e.g. 'ApprovedModelPackageArn'",
    )
    baseline = _matching(
        environ,
        BASELINE_PARAMETER_ENV,
        _PARAMETER,
        "the stack's monitoring baseline parameter, e.g. 'MonitoringBaselineUri'",
    )
    if baseline == parameter:
        raise ConfigurationError(
            f"environment variables {MODEL_PARAMETER_ENV} and {BASELINE_PARAMETER_ENV} both name "
            f"{parameter!r}: set them to the stack's model parameter and its monitoring baseline parameter"
        )
    role = _matching(
        environ,
        DEPLOYMENT_ROLE_ENV,
        _ROLE_ARN,
        "the ARN of the CloudFormation service role the updates use",
    )
    group = _matching(
        environ,
        MODEL_PACKAGE_GROUP_ENV,
        _SAGEMAKER_NAME,
        "the model package group, e.g. 'rookery-dev-models'",
    )
    endpoint = _matching(
        environ, ENDPOINT_NAME_ENV, _SAGEMAKER_NAME, "the endpoint's name, e.g. 'rookery-dev-endpoint'"
    )
    variant = _matching(
        environ, VARIANT_NAME_ENV, _VARIANT, "the endpoint's production variant, e.g. 'primary'"
    )
    source = _required(
        environ, DEPLOYMENT_EVENT_SOURCE_ENV, "the deployment event's source, e.g. 'rookery.deployer'"
    )
    if source.startswith("aws."):
        raise ConfigurationError(
            f"environment variable {DEPLOYMENT_EVENT_SOURCE_ENV} = {source!r}: EventBridge reserves sources "
            "starting with 'aws.' for AWS services; use the project's own, e.g. 'rookery.deployer'"
        )
    namespace = _required(
        environ,
        DEPLOYMENT_METRIC_NAMESPACE_ENV,
        "the deployments' metric namespace, e.g. 'Rookery/Deployments'",
    )
    if namespace.startswith("AWS/"):
        raise ConfigurationError(
            f"environment variable {DEPLOYMENT_METRIC_NAMESPACE_ENV} = {namespace!r}: CloudWatch reserves "
            "namespaces starting with 'AWS/'; use the project's own, e.g. 'Rookery/Deployments'"
        )
    return Settings(
        stack=stack,
        model_parameter=parameter,
        baseline_parameter=baseline,
        deployment_role_arn=role,
        model_package_group=group,
        endpoint_name=endpoint,
        variant_name=variant,
        event_source=source,
        event_type=_required(
            environ,
            DEPLOYMENT_EVENT_TYPE_ENV,
            "the deployment event's detail-type, e.g. 'Rookery Model Deployment'",
        ),
        metric_namespace=namespace,
        service=environ.get(POWERTOOLS_SERVICE_ENV) or DEFAULT_SERVICE,
    )


def _required(environ: Mapping[str, str], name: str, what: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"environment variable {name} is not set: the construct must set it to {what}"
        )
    return value


def _matching(environ: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = _required(environ, name, what)
    if not pattern.match(value):
        raise ConfigurationError(f"environment variable {name} = {value!r} is not valid: set it to {what}")
    return value
