"""Call a local endpoint as an application does: boto3's ``sagemaker-runtime`` client at its URL.

``runtime_client`` needs no AWS account (dummy credentials, no profile); ``invoke_endpoint`` sends
one request to a running endpoint (a record from ``endpoint.find_endpoint``) and raises
``InvocationError`` with SageMaker's error code and message when the endpoint or the model refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from emulators.core.errors import LocalEngineError


class InvocationError(LocalEngineError):
    """A local endpoint answered InvokeEndpoint with an error; the message is its code and message."""


def runtime_client(endpoint_url: str, region: str) -> Any:
    """A sagemaker-runtime client for a local endpoint: dummy credentials, no profile, one attempt."""
    # AWS_PROFILE naming a profile this machine lacks would fail the session; a local call needs none.
    core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    session = boto3.session.Session(
        botocore_session=core, aws_access_key_id="local", aws_secret_access_key="local", region_name=region
    )
    return session.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


def invoke_endpoint(
    endpoint: Mapping[str, Any], body: bytes, *, content_type: str, accept: str | None = None
) -> bytes:
    """InvokeEndpoint on the running ``endpoint`` (its record); the answer's body."""
    arn = str(endpoint.get("EndpointArn", ""))
    region = arn.split(":")[3] if arn.count(":") >= 4 else "us-east-1"
    request: dict[str, Any] = {
        "EndpointName": str(endpoint["EndpointName"]),
        "ContentType": content_type,
        "Body": body,
    }
    if accept:
        request["Accept"] = accept
    try:
        answer = runtime_client(str(endpoint["Url"]), region).invoke_endpoint(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise InvocationError(f"{error.get('Code', 'Error')}: {error.get('Message', exc)}") from None
    data: bytes = answer["Body"].read()
    return data
