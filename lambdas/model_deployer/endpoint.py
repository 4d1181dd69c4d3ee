"""What the live endpoint serves: ``DescribeEndpoint`` -> ``DescribeEndpointConfig`` -> ``DescribeModel``.

Read-only. The endpoint's current config is what SageMaker routes traffic to: after a blue/green
deployment that SageMaker rolled back it is the old config again, whatever the stack says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class LiveEndpoint:
    status: str | None  # None: there is no endpoint
    config: str | None = None
    model: str | None = None
    model_package: str | None = None  # the versioned model package ARN the variant's model serves
    detail: str = ""  # what could not be read, when something could not


def read_live(client: Any, endpoint: str, variant: str) -> LiveEndpoint:
    """The endpoint's status and the model package its ``variant`` serves."""
    try:
        described = client.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        if _not_found(error):
            return LiveEndpoint(None, detail=f"endpoint {endpoint} does not exist")
        raise
    status = str(described["EndpointStatus"])
    config_name = str(described["EndpointConfigName"])
    config = client.describe_endpoint_config(EndpointConfigName=config_name)
    models = [
        v.get("ModelName") for v in config.get("ProductionVariants", []) if v.get("VariantName") == variant
    ]
    if not models or not models[0]:
        return LiveEndpoint(
            status, config_name, detail=f"endpoint config {config_name} has no variant {variant!r}"
        )
    model_name = str(models[0])
    model = client.describe_model(ModelName=model_name)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    packages = [c["ModelPackageName"] for c in containers if c.get("ModelPackageName")]
    if not packages:
        return LiveEndpoint(
            status, config_name, model_name, detail=f"model {model_name} is not made from a model package"
        )
    return LiveEndpoint(status, config_name, model_name, str(packages[0]))


def _not_found(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    message = str(error.response.get("Error", {}).get("Message", ""))
    return code in ("ValidationException", "ValidationError") and "Could not find" in message
