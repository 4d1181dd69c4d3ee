"""The one place where rookery meets the SageMaker SDK's process-wide assumptions.

SDK v3 (sagemaker 3.27) cannot build a pipeline offline without help:

* importing ``sagemaker.mlops`` creates a boto3 client at class-definition time
  (``sagemaker.ai_registry.air_hub``), which needs a region from the environment;
* ``ModelTrainer`` validates its role with IAM unless ``SAGEMAKER_VALIDATE_ROLE=false``
  (there is no argument for it);
* boto3 sessions the SDK creates itself resolve ``AWS_PROFILE``, and fail on a profile that does
  not exist on this machine (a render needs none, so both profile variables are unset);
* every SDK object that builds its own ``LocalSession`` (``ProcessingStep``,
  ``TransformStep``) reads ``config.yaml`` from the default admin/user locations, and any
  non-empty config is re-validated with jsonschema on every lookup (~0.3 s each: a user's
  ``config.yaml`` makes a render 10-20x slower and leaks their defaults into the definition).
  Pointing both override variables at an empty file is the SDK's own switch to disable them.

``sdk_environment()`` sets exactly those variables for the duration of an import or a build
and restores them afterwards. It is not thread-safe (``os.environ`` is process-wide); renders
are short and run on one thread. Everything else the SDK needs (region, role, bucket,
telemetry opt-out) is passed explicitly through the session (``builder.offline_session``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

# A render never uses a profile: a missing or half-configured one must not break it.
_IGNORED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# A region for the import-time client only; the session below carries the stage's real region.
_IMPORT_REGION = "us-east-1"

# Telemetry is opted out through the session's SDK config (the only switch the SDK offers).
TELEMETRY_OFF: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

# Credentials are never used (no call leaves the process); botocore only needs them to exist
# so that client construction never walks the credential chain (IMDS timeouts on laptops).
OFFLINE_KEY = "rookery-offline-render"


def _sdk_variables() -> dict[str, str]:
    return {
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.devnull,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": os.devnull,
    }


@contextlib.contextmanager
def sdk_environment(region: str | None = None) -> Iterator[None]:
    """Set the SDK's environment switches (and a region if none is set); restore them on exit."""
    wanted = _sdk_variables()
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        wanted["AWS_DEFAULT_REGION"] = region or _IMPORT_REGION
    saved = {name: os.environ.get(name) for name in (*wanted, *_IGNORED)}
    os.environ.update(wanted)
    for name in _IGNORED:
        os.environ.pop(name, None)
    try:
        with warnings.catch_warnings():
            # "Running within a PipelineSession, there will be No Wait, No Logs...": expected here.
            warnings.filterwarnings(
                "ignore", message=r"Running within a PipelineSession", category=UserWarning
            )
            # The SDK's moved-module shims and docstring escapes: nothing rookery can act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_sdk_logging() -> None:
    """The SDK logs every config lookup and popped job name at INFO/WARNING; rookery's output is its own."""
    # Several SDK modules set their own level and handler, so the parent's level is not enough.
    loggers = [name for name in logging.root.manager.loggerDict if name.startswith("sagemaker")]
    for name in ["sagemaker", *loggers]:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def config_lookups_off(session: Any) -> Iterator[None]:
    """Hide the SDK config (telemetry opt-out) from lookups that do not emit telemetry.

    Each lookup against a non-empty config re-validates it with jsonschema; inside this block
    the session's config is empty, so lookups are free. Only calls decorated with the SDK's
    telemetry emitter (``ModelTrainer.train``, ``ModelBuilder.register``) must run outside it.
    """
    saved = session.sagemaker_config
    session.sagemaker_config = {}
    try:
        yield
    finally:
        session.sagemaker_config = saved
