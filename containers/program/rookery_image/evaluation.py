"""Evaluate job: score the test split, choose the decision threshold on validation, write evaluation.json.

``python3 /opt/program/evaluate.py --operating-point min_sensitivity:0.85 [--confidence 0.95]`` reads
``processing/input/{model/model.tar.gz,test/test.csv,validation/validation.csv}`` and writes
``processing/output/evaluation/{evaluation.json,roc.png,confusion_matrix.png}``. evaluation.json
follows SageMaker Model Monitor's ``binary_classification_metrics`` layout (plus ``specificity`` and
``pr_auc``), with the chosen ``decision_threshold`` and the ``operating_point`` result the
pipeline's gate reads (``rookery_contracts.evaluation`` names the keys and paths). The threshold is
chosen with a margin and the operating point is judged with one-sided confidence bounds at
``--confidence`` (:func:`rookery_image.metrics.gate_rule` states the rule).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rookery_contracts.evaluation import (
    CONFUSION_MATRIX_KEY,
    CONFUSION_PLOT_FILE,
    DATASET_KEY,
    DEFAULT_GATE_CONFIDENCE,
    EVALUATION_FILE,
    METRICS_KEY,
    OPERATING_POINT_KEY,
    ROC_PLOT_FILE,
    THRESHOLD_KEY,
)
from rookery_contracts.model_layout import MODEL_ARCHIVE
from rookery_image import contract, metrics
from rookery_image.contract import UserError
from rookery_image.model import ModelBundle, ModelLoadError, extract_archive
from rookery_image.training import read_split

CURVE_POINTS = 500  # enough to draw the curves; keeps evaluation.json small for large test sets


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"evaluate.py arguments: {message}; usage: {self.format_usage().strip()}")


@dataclass(frozen=True)
class Options:
    point: metrics.OperatingPoint
    confidence: float = DEFAULT_GATE_CONFIDENCE


def parse_args(argv: Sequence[str]) -> Options:
    parser = _Parser(prog="evaluate.py", add_help=False)
    parser.add_argument("--operating-point", default="best_f1")
    parser.add_argument("--confidence", type=float, default=DEFAULT_GATE_CONFIDENCE)
    args = parser.parse_args(list(argv))
    if not 0.5 <= args.confidence < 1.0:
        raise UserError(
            f"--confidence {args.confidence:g} must be at least 0.5 and below 1 "
            f"(0.5: no margin; e.g. {DEFAULT_GATE_CONFIDENCE:g})"
        )
    try:
        return Options(metrics.parse_operating_point(args.operating_point), args.confidence)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _thin(*curves: np.ndarray) -> list[list[float]]:
    n = len(curves[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [[round(float(v), 6) for v in c[idx]] for c in curves]


def _measure(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """The binary_classification_metrics block for one threshold."""
    confusion = metrics.Confusion.at(labels, scores, threshold)
    block: dict[str, Any] = {
        CONFUSION_MATRIX_KEY: {
            "0": {"0": confusion.tn, "1": confusion.fp},
            "1": {"0": confusion.fn, "1": confusion.tp},
        }
    }

    def at_threshold(name: str) -> Any:
        return lambda y, s: metrics.Confusion.at(y, s, threshold).rates()[name]

    for name, value in confusion.rates().items():
        block[name] = {
            "value": value,
            "standard_deviation": metrics.spread(labels, scores, at_threshold(name)),
        }
    # Model Monitor's baseline: a constant classifier that predicts the positive class for everyone.
    constant = metrics.Confusion.at(labels, np.ones_like(scores), 0.5).rates()
    for name in ("recall", "precision", "accuracy", "f0_5", "f1", "f2"):
        block[f"{name}_best_constant_classifier"] = {"value": constant[name], "standard_deviation": "NaN"}
    fpr, tpr = metrics.roc_curve(labels, scores)
    fpr_list, tpr_list = _thin(fpr, tpr)
    block["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": fpr_list,
        "true_positive_rates": tpr_list,
    }
    precision, recall = metrics.precision_recall_curve(labels, scores)
    precision_list, recall_list = _thin(precision, recall)
    block["precision_recall_curve"] = {"precisions": precision_list, "recalls": recall_list}
    block["auc"] = {
        "value": metrics.roc_auc(labels, scores),
        "standard_deviation": metrics.spread(labels, scores, metrics.roc_auc),
    }
    block["pr_auc"] = {
        "value": metrics.pr_auc(labels, scores),
        "standard_deviation": metrics.spread(labels, scores, metrics.pr_auc),
    }
    return block


def evaluate(
    bundle: ModelBundle,
    test: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    point: metrics.OperatingPoint,
    *,
    confidence: float = DEFAULT_GATE_CONFIDENCE,
) -> dict[str, Any]:
    """Build evaluation.json from (features, labels) of the test and validation splits."""
    val_scores = bundle.predict(validation[0])
    choice = metrics.choose_threshold(validation[1], val_scores, point, confidence=confidence)
    test_labels = test[1]
    test_scores = bundle.predict(test[0])
    block = _measure(test_labels, test_scores, choice.value)
    check = metrics.check_operating_point(
        metrics.Confusion.at(test_labels, test_scores, choice.value), point, confidence=confidence
    )
    pre = bundle.preprocessor
    return {
        METRICS_KEY: block,
        THRESHOLD_KEY: {
            "value": choice.value,
            "operating_point": str(point),
            "chosen_on": "validation",
            "reason": choice.reason,
            "confidence": confidence,
            "validation_lower_bound": choice.lower_bound,
            "margin_reached": choice.margin_reached,
        },
        OPERATING_POINT_KEY: operating_point_block(check, point),
        DATASET_KEY: {
            "positive_class": pre.positive_class,
            "negative_class": pre.negative_class,
            "test_rows": len(test_labels),
            "test_positives": int(test_labels.sum()),
            "validation_rows": len(validation[1]),
        },
        "model": {
            "rounds": bundle.metadata.get("rounds"),
            "training_metrics": bundle.metadata.get("metrics"),
        },
    }


def operating_point_block(check: metrics.GateCheck, point: metrics.OperatingPoint) -> dict[str, Any]:
    """The gate's section: the test rate, the bar, the one-sided bounds, the verdict and the rule."""
    return {
        "metric": check.metric,
        "value": check.value,
        "bar": check.bar,
        "met": int(check.met),
        "confidence": check.confidence,
        "lower_bound": check.lower_bound,
        "upper_bound": check.upper_bound,
        "rows": check.rows,
        "rule": metrics.gate_rule(point, check.confidence),
    }


def run(argv: Sequence[str], where: contract.Paths) -> dict[str, Any]:
    options = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rookery-model-") as tmp:
        try:
            folder = extract_archive(where.processing_input("model") / MODEL_ARCHIVE, Path(tmp))
            bundle = ModelBundle.load(folder)
        except ModelLoadError as exc:
            raise UserError(str(exc)) from None
    n_features = len(bundle.preprocessor.feature_names)
    splits = {}
    for name in ("test", "validation"):
        folder = where.processing_input(name)
        if not folder.is_dir():
            raise UserError(f"missing input {name!r}: map the preprocess job's {name} split to {folder}")
        split = read_split(folder, name, n_features)
        if len(np.unique(split.labels)) < 2:
            raise UserError(
                f"the {name} split has only one class; the metrics need both: rerun preprocess with more data"
            )
        splits[name] = (split.features, split.labels.astype(np.int64))
    result = evaluate(
        bundle, splits["test"], splits["validation"], options.point, confidence=options.confidence
    )

    out = where.processing_output("evaluation")
    out.mkdir(parents=True, exist_ok=True)
    (out / EVALUATION_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    from rookery_image import plots  # noqa: PLC0415 (matplotlib costs a second to import; only here)

    test_scores = bundle.predict(splits["test"][0])
    plots.roc_png(out / ROC_PLOT_FILE, splits["test"][1], test_scores, result)
    plots.confusion_png(out / CONFUSION_PLOT_FILE, result)
    return result


def main(argv: Sequence[str]) -> int:
    def job() -> None:
        result = run(argv, contract.paths())
        block, point, chosen = result[METRICS_KEY], result[OPERATING_POINT_KEY], result[THRESHOLD_KEY]
        print(
            f"evaluate: test AUC {block['auc']['value']:.4f}, "
            f"threshold {chosen['value']:.4f} "
            f"({chosen['operating_point']}): {point['metric']} {point['value']:.4f}"
            + (
                ""
                if point["bar"] is None
                else f" vs bar {point['bar']} ({point['confidence']:.0%} upper bound "
                f"{point['upper_bound']:.4f}) -> {'met' if point['met'] else 'NOT met'}"
            ),
            flush=True,
        )

    return contract.run_job("evaluate", job)
