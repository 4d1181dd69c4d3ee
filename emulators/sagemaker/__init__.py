"""The local engine: run the rendered SageMaker pipeline definition on one machine, no AWS, no Docker.

Processing, training, tuning and transform jobs run the project image's entrypoints as
subprocesses, each in its own ``/opt/ml`` sandbox; ``s3://bucket/key`` is ``<home>/s3/bucket/key``;
the model registry, executions and endpoints live under the same home (``.rookery/``). See
``engine.py`` for the scheduling semantics and each step module for what it emulates.
"""

from __future__ import annotations

from emulators.core.errors import (
    EndpointError,
    ExecutionNotFoundError,
    LocalEngineError,
    RegistryError,
    UnsupportedDefinition,
)
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.sagemaker.context import InterruptPlan
from emulators.sagemaker.engine import LocalEngine
from emulators.sagemaker.records import Execution, StepEvent, StepRecord
from emulators.sagemaker.registry import LocalRegistry, ModelPackage
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
    "ParameterError",
    "RegistryError",
    "StepEvent",
    "StepRecord",
    "UnsupportedDefinition",
]
