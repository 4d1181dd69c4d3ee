"""The layout of ``evaluation.json``: what the Evaluate job writes and the pipeline's gate, the CLI and
the demo read.

The document follows SageMaker Model Monitor's model-quality layout (``binary_classification_metrics``,
each metric as ``{"value", "standard_deviation"}``) plus rookery's ``decision_threshold`` and
``operating_point`` sections. Paths are dotted, as a pipeline's ``JsonGet`` names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

EVALUATION_FILE: Final = "evaluation.json"
# The plots Evaluate writes next to it.
ROC_PLOT_FILE: Final = "roc.png"
CONFUSION_PLOT_FILE: Final = "confusion_matrix.png"

METRICS_KEY: Final = "binary_classification_metrics"
CONFUSION_MATRIX_KEY: Final = "confusion_matrix"  # in METRICS_KEY: actual -> predicted counts
THRESHOLD_KEY: Final = "decision_threshold"
OPERATING_POINT_KEY: Final = "operating_point"
DATASET_KEY: Final = "dataset"

# The confidence of the one-sided bounds Evaluate chooses the threshold and judges the operating point
# with, unless the stage sets ``ml.operating_point.confidence``.
DEFAULT_GATE_CONFIDENCE: Final = 0.95

AUC_PATH: Final = f"{METRICS_KEY}.auc.value"
# The chosen threshold and the rule that chose it (e.g. "min_sensitivity:0.85").
THRESHOLD_PATH: Final = f"{THRESHOLD_KEY}.value"
THRESHOLD_RULE_PATH: Final = f"{THRESHOLD_KEY}.operating_point"
# The operating point on the test split: the metric, its value, the bar (null for best_f1), met (1/0:
# 0 only when the rate's one-sided upper bound is below the bar), the bound and the rule in words.
OPERATING_POINT_METRIC_PATH: Final = f"{OPERATING_POINT_KEY}.metric"
OPERATING_POINT_VALUE_PATH: Final = f"{OPERATING_POINT_KEY}.value"
OPERATING_POINT_BAR_PATH: Final = f"{OPERATING_POINT_KEY}.bar"
OPERATING_POINT_MET_PATH: Final = f"{OPERATING_POINT_KEY}.met"
OPERATING_POINT_UPPER_PATH: Final = f"{OPERATING_POINT_KEY}.upper_bound"
OPERATING_POINT_RULE_PATH: Final = f"{OPERATING_POINT_KEY}.rule"
# Every path the pipeline's gate reads.
GATE_PATHS: Final = (
    AUC_PATH,
    OPERATING_POINT_METRIC_PATH,
    OPERATING_POINT_VALUE_PATH,
    OPERATING_POINT_BAR_PATH,
    OPERATING_POINT_MET_PATH,
)


class EvaluationError(ValueError):
    """The document lacks a value a reader needs; the message names the path."""


_REQUIRED: Final = object()


def value_at(document: object, path: str, default: Any = _REQUIRED) -> Any:
    """The value at ``path`` (``binary_classification_metrics.auc.value``), or ``default`` when absent.

    Without a default, an absent value raises :class:`EvaluationError` naming the path.
    """
    node = document
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is not _REQUIRED:
                return default
            raise EvaluationError(
                f"{EVALUATION_FILE} has no {path!r} (no {key!r} there); is it the Evaluate step's output?"
            )
        node = node[key]
    return node
