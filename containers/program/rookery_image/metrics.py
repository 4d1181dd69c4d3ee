"""Binary-classification metrics and decision-threshold choice (pure numpy, no scikit-learn).

Conventions: label 1 is the positive class; a record is predicted positive when its probability is
``>= threshold``; a ratio with an empty denominator is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

OPERATING_POINT_METRIC = {"min_sensitivity": "recall", "min_specificity": "specificity", "best_f1": "f1"}


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def at(cls, labels: np.ndarray, scores: np.ndarray, threshold: float) -> Confusion:
        predicted = scores >= threshold
        actual = labels == 1
        return cls(
            tp=int(np.sum(predicted & actual)),
            fp=int(np.sum(predicted & ~actual)),
            fn=int(np.sum(~predicted & actual)),
            tn=int(np.sum(~predicted & ~actual)),
        )

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Sensitivity, the true positive rate."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        """The true negative rate."""
        return _ratio(self.tn, self.tn + self.fp)

    def f_beta(self, beta: float) -> float:
        p, r = self.precision, self.recall
        return _ratio((1 + beta**2) * p * r, beta**2 * p + r)

    @property
    def f1(self) -> float:
        return self.f_beta(1.0)

    def rates(self) -> dict[str, float]:
        """Every threshold metric of the SageMaker model-quality layout, plus specificity."""
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "specificity": self.specificity,
            "true_positive_rate": self.recall,
            "true_negative_rate": self.specificity,
            "false_positive_rate": _ratio(self.fp, self.fp + self.tn),
            "false_negative_rate": _ratio(self.fn, self.fn + self.tp),
            "f0_5": self.f_beta(0.5),
            "f1": self.f1,
            "f2": self.f_beta(2.0),
        }


def _sweep(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (descending) with the TP and FP counts when predicting positive at ``>=`` each."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    hits = (labels[order] == 1).astype(np.int64)
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tps = np.cumsum(hits)[last_of_run]
    fps = (last_of_run + 1) - tps
    return sorted_scores[last_of_run], tps, fps


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates from (0, 0) to (1, 1), one point per distinct score."""
    _, tps, fps = _sweep(labels, scores)
    positives, negatives = tps[-1], fps[-1]
    fpr = np.r_[0.0, fps / negatives] if negatives else np.r_[0.0, np.zeros(len(fps))]
    tpr = np.r_[0.0, tps / positives] if positives else np.r_[0.0, np.zeros(len(tps))]
    return fpr, tpr


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids, so tied scores count half)."""
    fpr, tpr = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each distinct score, from the strictest threshold down."""
    _, tps, fps = _sweep(labels, scores)
    positives = tps[-1]
    precision = tps / (tps + fps)
    recall = tps / positives if positives else np.zeros(len(tps))
    return precision, recall


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: sum of (R_k - R_k-1) * P_k."""
    precision, recall = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# --- choosing the decision threshold -----------------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    kind: str  # min_sensitivity | min_specificity | best_f1
    bar: float | None

    @property
    def metric(self) -> str:
        return OPERATING_POINT_METRIC[self.kind]

    def __str__(self) -> str:
        return self.kind if self.bar is None else f"{self.kind}:{self.bar:g}"


def parse_operating_point(text: str) -> OperatingPoint:
    """``min_sensitivity:0.85`` | ``min_specificity:0.99`` | ``best_f1``; ValueError naming the fix."""
    kind, _, value = text.strip().partition(":")
    if kind not in OPERATING_POINT_METRIC:
        raise ValueError(
            f"operating point {text!r} is unknown; "
            "use min_sensitivity:<0..1>, min_specificity:<0..1> or best_f1"
        )
    if kind == "best_f1":
        if value:
            raise ValueError(f"operating point {text!r}: best_f1 takes no value; write best_f1")
        return OperatingPoint(kind, None)
    try:
        bar = float(value)
    except ValueError:
        raise ValueError(f"operating point {text!r} needs a number after ':', e.g. {kind}:0.9") from None
    if not 0.0 < bar < 1.0:
        raise ValueError(
            f"operating point {text!r}: the bar must be between 0 and 1 (exclusive), e.g. {kind}:0.9"
        )
    return OperatingPoint(kind, bar)


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    reason: str
    confusion: Confusion  # on the data it was chosen on


def choose_threshold(labels: np.ndarray, scores: np.ndarray, point: OperatingPoint) -> ThresholdChoice:
    """Pick the threshold on (validation) data that meets the operating point.

    * ``min_sensitivity:v`` - the highest threshold whose sensitivity is at least v (best specificity);
    * ``min_specificity:v`` - the lowest threshold whose specificity is at least v (best sensitivity);
    * ``best_f1`` - the threshold with the highest F1 (the higher threshold on ties).

    Thresholds sit halfway between neighbouring distinct scores, so the choice classifies the data it
    was chosen on exactly as evaluated and is not tied to one record's score.
    """
    distinct, tps, fps = _sweep(labels, scores)
    positives, negatives = int(tps[-1]), int(fps[-1])
    # Option k predicts positive for the k highest distinct scores (k = 0: nothing positive).
    tp = np.r_[0, tps]
    fp = np.r_[0, fps]
    upper = np.r_[1.0, distinct]
    lower = np.r_[distinct, 0.0]
    middle = (upper + lower) / 2.0
    # Neighbouring floats can have no midpoint between them; the upper score then separates them.
    cuts = np.where(middle > lower, middle, upper)
    recall = tp / positives if positives else np.zeros(len(tp))
    specificity = (negatives - fp) / negatives if negatives else np.ones(len(fp))
    if point.kind == "min_sensitivity":
        assert point.bar is not None
        k = int(np.flatnonzero(recall >= point.bar - 1e-12)[0])
        rule = f"highest threshold with validation sensitivity >= {point.bar:g}"
    elif point.kind == "min_specificity":
        assert point.bar is not None
        k = int(np.flatnonzero(specificity >= point.bar - 1e-12)[-1])
        rule = f"lowest threshold with validation specificity >= {point.bar:g}"
    else:
        precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros(len(tp)), where=(precision + recall) > 0
        )
        k = int(np.argmax(f1))
        rule = f"threshold with the best validation F1 ({f1[k]:.4f})"
    confusion = Confusion(tp=int(tp[k]), fp=int(fp[k]), fn=positives - int(tp[k]), tn=negatives - int(fp[k]))
    value = float(cuts[k])
    reason = (
        f"{rule}: at {value:.6f} the {confusion.total} validation rows give "
        f"sensitivity {confusion.recall:.4f}, "
        f"specificity {confusion.specificity:.4f}, precision {confusion.precision:.4f}"
    )
    return ThresholdChoice(value=value, reason=reason, confusion=confusion)


# --- spread ------------------------------------------------------------------------------------

MIN_ROWS_FOR_SPREAD = 200  # as SageMaker Model Monitor: fewer rows report "NaN"
SPREAD_SAMPLES = 5
SPREAD_FRACTION = 0.8


def spread(
    labels: np.ndarray, scores: np.ndarray, metric: Callable[[np.ndarray, np.ndarray], float], seed: int = 0
) -> float | str:
    """Standard deviation the way Model Monitor computes it: the metric on 5 random 80% samples."""
    n = len(labels)
    if n < MIN_ROWS_FOR_SPREAD:
        return "NaN"
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(SPREAD_SAMPLES):
        idx = rng.choice(n, size=int(n * SPREAD_FRACTION), replace=False)
        values.append(metric(labels[idx], scores[idx]))
    return float(np.std(values))
