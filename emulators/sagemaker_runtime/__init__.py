"""Local SageMaker Runtime: a served endpoint, its blue/green deployments, data capture, deploy on approval.

``models`` (the endpoint's state), ``responses`` (InvokeEndpoint on the wire), ``exceptions``,
``client`` (calling an endpoint as an application does, through boto3),
``fleets`` (model servers and traffic), ``metrics`` (measurements and rollback alarms),
``deployment`` (blue/green with auto-rollback), ``capture`` (data capture), ``deployer`` (deploy on
approval). See README.md for what runs as on SageMaker and what differs.
"""

from __future__ import annotations

from emulators.sagemaker_runtime.capture import CaptureSettings
from emulators.sagemaker_runtime.deployer import LocalDeployer
from emulators.sagemaker_runtime.exceptions import DeploymentInProgressError, EndpointNotFoundError
from emulators.sagemaker_runtime.models import (
    DeploymentRecord,
    EndpointSettings,
    EndpointStatus,
    LocalEndpoint,
    endpoint_record,
    find_endpoint,
    monitored_package,
    running_endpoints,
)

__all__ = [
    "CaptureSettings",
    "DeploymentInProgressError",
    "DeploymentRecord",
    "EndpointNotFoundError",
    "EndpointSettings",
    "EndpointStatus",
    "LocalDeployer",
    "LocalEndpoint",
    "endpoint_record",
    "find_endpoint",
    "monitored_package",
    "running_endpoints",
]
