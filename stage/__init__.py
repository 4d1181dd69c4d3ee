"""The bottom floor: the stage model and loader, every name derived from a stage, repository paths.

No CDK, no boto3, no CLI: ``infra/``, ``pipelines/``, the emulators and the CLI all import this
package, and it imports none of them (the import contract in ``make lint`` holds it so).
"""

from __future__ import annotations

from stage.loader import available_stages, load_stage, parse_stage
from stage.model import (
    APPROVAL_STATUSES,
    DEFAULT_ENDPOINTS,
    ESSENTIAL_ENDPOINTS,
    INTERFACE_ENDPOINTS,
    LOG_RETENTION_DAYS,
    PENDING_MANUAL_APPROVAL,
    PRODUCTION_MIN_LOG_RETENTION_DAYS,
    ConfigError,
    DataLayout,
    DatasetField,
    DatasetSchema,
    DataSettings,
    MlSettings,
    NotebookSettings,
    OperatingPoint,
    SplitSettings,
    Stage,
    TrainingSettings,
    TuningSettings,
)
from stage.paths import REPO_ROOT, STAGES_DIR

__all__ = [
    "APPROVAL_STATUSES",
    "DEFAULT_ENDPOINTS",
    "ESSENTIAL_ENDPOINTS",
    "INTERFACE_ENDPOINTS",
    "LOG_RETENTION_DAYS",
    "PENDING_MANUAL_APPROVAL",
    "PRODUCTION_MIN_LOG_RETENTION_DAYS",
    "REPO_ROOT",
    "STAGES_DIR",
    "ConfigError",
    "DataLayout",
    "DataSettings",
    "DatasetField",
    "DatasetSchema",
    "MlSettings",
    "NotebookSettings",
    "OperatingPoint",
    "SplitSettings",
    "Stage",
    "TrainingSettings",
    "TuningSettings",
    "available_stages",
    "load_stage",
    "parse_stage",
]
