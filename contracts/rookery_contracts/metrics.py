"""The training metrics: how the image prints them and how SageMaker parses them (metric definitions).

Every boosting round the train entrypoint prints one line, ``[12] train-auc:0.991525
validation-auc:0.918400``, and last ``[model] ...`` with the saved model's values; SageMaker applies
:data:`METRIC_DEFINITIONS` to the log (the tuning objective is one of them). Names follow SageMaker's
built-in XGBoost, so an objective reads the same with either image. Values are printed with fixed
decimals (:func:`log_item`, never exponents), so ``[0-9.]+`` captures them whole; the last value a
job prints for a metric is the one SageMaker keeps.
"""

from __future__ import annotations

from typing import Final

# The data a training job evaluates each round, as XGBoost names its evaluation sets.
EVALUATED_CHANNELS: Final = ("train", "validation")
METRIC_NAMES: Final = ("auc", "aucpr", "logloss", "error")
# What hyperparameter tuning maximizes.
OBJECTIVE_METRIC: Final = "validation:auc"


def log_name(channel: str, metric: str) -> str:
    """``validation-auc``: XGBoost's name for a metric on one evaluation set, as the log prints it."""
    return f"{channel}-{metric}"


def log_item(name: str, value: float) -> str:
    """``validation-auc:0.918400``: one value of a log line (six fixed decimals, never an exponent)."""
    return f"{name}:{value:.6f}"


METRIC_DEFINITIONS: Final = tuple(
    {"Name": f"{channel}:{metric}", "Regex": f"{log_name(channel, metric)}:([0-9.]+)"}
    for channel in EVALUATED_CHANNELS
    for metric in METRIC_NAMES
)
