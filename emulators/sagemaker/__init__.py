"""The local SageMaker: run the rendered pipeline definition on one machine, no AWS, no Docker.

``models`` (the state: executions, the model registry, models), ``responses`` (ARNs, names and
``Describe*`` shapes), ``exceptions``; the engine in ``pipeline/`` (scheduling, expressions,
parameters), one module per step type in ``steps/``, what the engine refuses in ``checks/``, and
``monitoring`` (a Model Monitor job over a local endpoint's capture).
Jobs run the project image's entrypoints as subprocesses, each in its own ``/opt/ml`` sandbox;
``s3://bucket/key`` is the local S3 (``emulators.s3``). See README.md for the semantics.
"""

from __future__ import annotations

from emulators.core.errors import EndpointError, LocalEngineError
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.sagemaker.exceptions import (
    ExecutionNotFoundError,
    MonitoringError,
    RegistryError,
    UnsupportedDefinition,
)
from emulators.sagemaker.models import Execution, LocalRegistry, ModelPackage, StepEvent, StepRecord
from emulators.sagemaker.monitoring import MonitoringRun, run_monitoring
from emulators.sagemaker.pipeline.engine import LocalEngine
from emulators.sagemaker.steps.spot import InterruptPlan
from emulators.sagemaker_runtime.models import LocalEndpoint
from pipelines.parameters import ParameterError

__all__ = [
    "EndpointError",
    "Execution",
    "ExecutionNotFoundError",
    "ImageMap",
    "InterruptPlan",
    "LocalEndpoint",
    "LocalEngine",
    "LocalEngineError",
    "LocalHome",
    "LocalRegistry",
    "ModelPackage",
    "MonitoringError",
    "MonitoringRun",
    "ParameterError",
    "RegistryError",
    "StepEvent",
    "StepRecord",
    "UnsupportedDefinition",
    "run_monitoring",
]
