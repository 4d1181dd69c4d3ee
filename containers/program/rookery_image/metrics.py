"""Binary-classification metrics and decision-threshold choice (pure numpy, no scikit-learn).

Conventions: label 1 is the positive class; a record is predicted positive when its probability is
``>= threshold``; a ratio with an empty denominator is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

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


# --- confidence bounds on a rate --------------------------------------------------------------


def wilson_bounds(
    successes: np.ndarray | int, trials: int, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Wilson score bounds on a rate observed as ``successes`` of ``trials``.

    The true rate is at least ``lower`` with probability ``confidence``, and at most ``upper`` with
    the same probability (each bound is one-sided). At ``confidence`` 0.5 both are the observed rate.
    Wilson's interval keeps its coverage near 0 and 1, where the rates of an operating point live,
    and never leaves [0, 1]. With no trials the rate is unknown: (0, 1).
    """
    k = np.asarray(successes, dtype=np.float64)
    if trials == 0:
        return np.zeros_like(k), np.ones_like(k)
    z = NormalDist().inv_cdf(confidence)
    p = k / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / trials + z2 / (4 * trials * trials)) / denominator
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


# --- choosing the decision threshold and checking it ---------------------------------------------

# The constrained rate of each operating point: (counts of the rate's hits, of its rows) from a confusion.
_RATE_COUNTS: dict[str, Callable[[Confusion], tuple[int, int]]] = {
    "min_sensitivity": lambda c: (c.tp, c.tp + c.fn),
    "min_specificity": lambda c: (c.tn, c.tn + c.fp),
}


def gate_rule(point: OperatingPoint, confidence: float) -> str:
    """The threshold and gate rule in one paragraph (evaluation.json and the report print it)."""
    if point.bar is None:
        return (
            "best_f1: the threshold with the best F1 on the validation split; the operating point sets no "
            "bar, so the gate checks only the AUC."
        )
    rate = "sensitivity" if point.kind == "min_sensitivity" else "specificity"
    edge = "highest" if point.kind == "min_sensitivity" else "lowest"
    level = f"{confidence:.0%}"
    return (
        f"{point}: the threshold is the {edge} one on the validation split whose one-sided {level} Wilson "
        f"lower bound on {rate} is at least {point.bar:g}, a margin that shrinks as the split grows (when no "
        f"threshold reaches it, the one with the largest lower bound, and the evaluation says so). "
        f"The gate fails the model only on evidence that it misses the bar: when the one-sided {level} "
        f"Wilson upper bound on the test split's {rate} at that threshold is below {point.bar:g}. A model "
        f"whose {rate} truly meets the bar is therefore rejected by chance in at most about "
        f"{1 - confidence:.0%} of splits."
    )


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    reason: str
    confusion: Confusion  # on the data it was chosen on
    lower_bound: float | None = None  # the constrained rate's lower bound there (None for best_f1)
    margin_reached: bool = True  # False: no threshold's lower bound reached the bar


def choose_threshold(
    labels: np.ndarray, scores: np.ndarray, point: OperatingPoint, *, confidence: float
) -> ThresholdChoice:
    """Pick the threshold on (validation) data that meets the operating point with a margin.

    * ``min_sensitivity:v`` - the highest threshold whose sensitivity's lower bound is at least v;
    * ``min_specificity:v`` - the lowest threshold whose specificity's lower bound is at least v;
    * ``best_f1`` - the threshold with the highest F1 (the higher threshold on ties).

    The lower bound is the one-sided Wilson bound at ``confidence`` (:func:`wilson_bounds`): at 0.5 it
    is the observed rate, so the threshold sits at the exact edge of the bar. When no threshold's
    bound reaches the bar (a small split), the one with the largest bound is chosen (every validation
    positive, or negative, classified right) and ``margin_reached`` is False.

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
    bound: np.ndarray | None = None
    reached = True
    level = f"{confidence:.0%}"
    if point.kind == "min_sensitivity":
        assert point.bar is not None
        bound = wilson_bounds(tp, positives, confidence)[0]
        ok = np.flatnonzero(bound >= point.bar - 1e-12)
        reached = len(ok) > 0
        k = int(ok[0]) if reached else int(np.argmax(bound))
        rule = f"highest threshold with a validation sensitivity lower bound ({level}) >= {point.bar:g}"
    elif point.kind == "min_specificity":
        assert point.bar is not None
        bound = wilson_bounds(negatives - fp, negatives, confidence)[0]
        ok = np.flatnonzero(bound >= point.bar - 1e-12)
        reached = len(ok) > 0
        k = int(ok[-1]) if reached else len(bound) - 1 - int(np.argmax(bound[::-1]))
        rule = f"lowest threshold with a validation specificity lower bound ({level}) >= {point.bar:g}"
    else:
        precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros(len(tp)), where=(precision + recall) > 0
        )
        k = int(np.argmax(f1))
        rule = f"threshold with the best validation F1 ({f1[k]:.4f})"
    if not reached:
        rule = (
            f"{rule} not reachable on {positives if point.kind == 'min_sensitivity' else negatives} "
            f"validation {'positives' if point.kind == 'min_sensitivity' else 'negatives'}; "
            "the threshold with the largest lower bound"
        )
    confusion = Confusion(tp=int(tp[k]), fp=int(fp[k]), fn=positives - int(tp[k]), tn=negatives - int(fp[k]))
    value = float(cuts[k])
    bound_value = None if bound is None else float(bound[k])
    reason = (
        f"{rule}: at {value:.6f} the {confusion.total} validation rows give "
        f"sensitivity {confusion.recall:.4f}, "
        f"specificity {confusion.specificity:.4f}, precision {confusion.precision:.4f}"
        + ("" if bound_value is None else f" (lower bound {bound_value:.4f})")
    )
    return ThresholdChoice(
        value=value, reason=reason, confusion=confusion, lower_bound=bound_value, margin_reached=reached
    )


@dataclass(frozen=True)
class GateCheck:
    """The operating point on the test split: the rate, its one-sided bounds and the verdict."""

    metric: str
    value: float
    bar: float | None
    confidence: float
    lower_bound: float | None
    upper_bound: float | None
    rows: int  # the rate's denominator: test positives (sensitivity) or negatives (specificity)
    met: bool


def check_operating_point(confusion: Confusion, point: OperatingPoint, *, confidence: float) -> GateCheck:
    """Met unless the rate's one-sided upper bound at ``confidence`` is below the bar.

    The gate then fails a model only on evidence that it misses the bar, not because a small test
    split measured it a hair below. ``best_f1`` sets no bar and is always met.
    """
    value = float(confusion.rates()[point.metric])
    counts = _RATE_COUNTS.get(point.kind)
    if point.bar is None or counts is None:
        return GateCheck(point.metric, value, None, confidence, None, None, confusion.total, True)
    hits, rows = counts(confusion)
    low, high = (float(b) for b in wilson_bounds(hits, rows, confidence))
    return GateCheck(point.metric, value, point.bar, confidence, low, high, rows, high >= point.bar - 1e-12)


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
