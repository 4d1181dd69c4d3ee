"""The local endpoint's errors: what the library raises, and the errors InvokeEndpoint answers with.

``EndpointError`` (and its subclasses) are for the caller of the library or the CLI: each names
what is wrong and what to do. ``ServiceError`` is the wire: an HTTP status, SageMaker Runtime's
error code (``x-amzn-ErrorType``, what botocore turns into ``ClientError`` codes) and extra fields.
"""

from __future__ import annotations

from typing import Any

from emulators.core.errors import EndpointError


class EndpointNotFoundError(EndpointError):
    """No endpoint of that name is being served under the local home."""


class DeploymentInProgressError(EndpointError):
    """The endpoint is already being updated: one deployment at a time."""


class ServiceError(Exception):
    """An InvokeEndpoint error as the endpoint answers it (rest-json); ``client.InvocationError`` is
    what a caller of :func:`emulators.sagemaker_runtime.client.invoke_endpoint` gets from it."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def validation_error(message: str) -> ServiceError:
    return ServiceError(400, "ValidationError", message)


def internal_failure(message: str) -> ServiceError:
    return ServiceError(500, "InternalFailure", message)


def service_unavailable(message: str) -> ServiceError:
    return ServiceError(503, "ServiceUnavailable", message)
