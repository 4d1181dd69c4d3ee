"""Metrics and threshold choice: a hand-made confusion matrix, scikit-learn's numbers, and the job itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_helpers import Sandbox, check
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from rookery_image import features, metrics

# The example: 235 TP, 45 FP, 37 FN, 210 TN.
TP, FP, FN, TN = 235, 45, 37, 210


def test_hand_made_confusion_matrix() -> None:
    c = metrics.Confusion(tp=TP, fp=FP, fn=FN, tn=TN)
    assert round(c.recall, 3) == 0.864  # sensitivity
    assert round(c.specificity, 3) == 0.824
    assert round(c.precision, 3) == 0.839
    assert round(c.accuracy, 3) == 0.844
    rates = c.rates()
    assert rates["true_positive_rate"] == c.recall and rates["false_negative_rate"] == pytest.approx(
        1 - c.recall
    )
    assert rates["f1"] == pytest.approx(2 * 235 / (2 * 235 + 45 + 37))


def test_confusion_counts_from_scores() -> None:
    labels = np.array([1] * TP + [0] * FP + [1] * FN + [0] * TN)
    scores = np.array([0.9] * (TP + FP) + [0.1] * (FN + TN))
    assert metrics.Confusion.at(labels, scores, 0.5) == metrics.Confusion(TP, FP, FN, TN)
    assert metrics.Confusion.at(labels, scores, 0.9).tp == TP, "a score equal to the threshold is positive"


def test_empty_denominators_are_zero() -> None:
    none_predicted = metrics.Confusion(tp=0, fp=0, fn=5, tn=5)
    assert none_predicted.precision == 0.0 and none_predicted.f1 == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.uniform(0, 1, 400) * 0.6 + labels * 0.3, 2)  # rounding makes ties
    assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert metrics.pr_auc(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    fpr, tpr = metrics.roc_curve(labels, scores)
    sk_fpr, sk_tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert fpr == pytest.approx(sk_fpr) and tpr == pytest.approx(sk_tpr)


def _data(seed: int = 5, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.18), 0, 1)
    return labels, scores


def _lower(hits: int, rows: int, confidence: float) -> float:
    return float(metrics.wilson_bounds(np.array([hits]), rows, confidence)[0][0])


@pytest.mark.parametrize("confidence", [0.5, 0.95])
@pytest.mark.parametrize("bar", [0.5, 0.85, 0.95])
def test_min_sensitivity_picks_the_highest_threshold_that_meets_the_bar(
    bar: float, confidence: float
) -> None:
    """At confidence 0.5 the bound is the rate itself: the threshold sits at the exact edge of the bar."""
    labels, scores = _data()
    point = metrics.OperatingPoint("min_sensitivity", bar)
    choice = metrics.choose_threshold(labels, scores, point, confidence=confidence)
    assert metrics.Confusion.at(labels, scores, choice.value) == choice.confusion
    assert choice.confusion.recall >= bar and choice.margin_reached
    positives = int(labels.sum())
    assert choice.lower_bound == pytest.approx(_lower(choice.confusion.tp, positives, confidence))
    assert choice.lower_bound is not None and choice.lower_bound >= bar
    stricter = np.min(scores[scores >= choice.value])  # the next threshold up drops one more score
    one_up = metrics.Confusion.at(labels, scores, np.nextafter(stricter, 2))
    assert _lower(one_up.tp, positives, confidence) < bar
    if confidence == 0.5:
        assert one_up.recall < bar
    assert f"validation sensitivity lower bound ({confidence:.0%}) >= {bar:g}" in choice.reason


@pytest.mark.parametrize("confidence", [0.5, 0.95])
@pytest.mark.parametrize("bar", [0.5, 0.9, 0.99])
def test_min_specificity_picks_the_lowest_threshold_that_meets_the_bar(bar: float, confidence: float) -> None:
    labels, scores = _data()
    point = metrics.OperatingPoint("min_specificity", bar)
    choice = metrics.choose_threshold(labels, scores, point, confidence=confidence)
    assert metrics.Confusion.at(labels, scores, choice.value) == choice.confusion
    assert choice.confusion.specificity >= bar and choice.margin_reached
    negatives = len(labels) - int(labels.sum())
    assert choice.lower_bound is not None and choice.lower_bound >= bar
    looser = metrics.Confusion.at(labels, scores, np.max(scores[scores < choice.value]))
    assert _lower(looser.tn, negatives, confidence) < bar
    if confidence == 0.5:
        assert looser.specificity < bar


def test_the_margin_moves_the_threshold_away_from_the_bar() -> None:
    labels, scores = _data()
    point = metrics.OperatingPoint("min_sensitivity", 0.9)
    edge = metrics.choose_threshold(labels, scores, point, confidence=0.5)
    margin = metrics.choose_threshold(labels, scores, point, confidence=0.95)
    assert margin.value < edge.value and margin.confusion.recall > edge.confusion.recall


def test_best_f1_is_the_best_f1() -> None:
    labels, scores = _data()
    choice = metrics.choose_threshold(
        labels, scores, metrics.OperatingPoint("best_f1", None), confidence=0.95
    )
    best = max(metrics.Confusion.at(labels, scores, t).f1 for t in np.unique(scores))
    assert choice.confusion.f1 == pytest.approx(best)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_recall:0.9", "unknown"),
        ("min_sensitivity", "needs a number"),
        ("min_specificity:1", "between 0 and 1"),
        ("best_f1:0.5", "takes no value"),
    ],
)
def test_operating_point_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.parse_operating_point(text)


def test_spread_follows_model_monitor() -> None:
    labels, scores = _data(n=150)
    assert metrics.spread(labels, scores, metrics.roc_auc) == "NaN"  # under 200 rows
    labels, scores = _data(n=1000)
    spread = metrics.spread(labels, scores, metrics.roc_auc)
    assert isinstance(spread, float) and 0 < spread < 0.05


def _write(folder: Path, name: str, rows: list[tuple[int, int, int]]) -> None:
    """rows: (label, x, count) -> ``count`` CSV lines of ``label,x``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{label},{x}" for label, x, count in rows for _ in range(count)]
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_the_evaluate_job_reports_the_hand_made_matrix(tmp_path: Path) -> None:
    """A one-feature model where x=1 means 'positive'; the test split is built to hold 235/45/37/210."""
    pre = features.fit(
        dataset="handmade", target="y", positive_class="1", negative_class="0", id_column=None,
        numeric_names=["x"], numeric_train=np.array([[0.0], [1.0]]), categorical_names=[],
        categorical_levels=[], standardize=False,
    )  # fmt: skip
    data = tmp_path / "data"
    _write(data / "train", "train", [(1, 1, 90), (0, 1, 10), (1, 0, 10), (0, 0, 90)])
    _write(data / "validation", "validation", [(1, 1, TP), (0, 1, FP), (1, 0, FN), (0, 0, TN)])
    (data / "preprocessor").mkdir()
    (data / "preprocessor" / "preprocessor.json").write_text(json.dumps(pre.to_dict()))
    train = Sandbox(tmp_path / "train")
    train.training_job(
        {"num_round": 5, "max_depth": 1}, {n: data / n for n in ("train", "validation", "preprocessor")}
    )
    check(train.run("train"))

    job = Sandbox(tmp_path / "evaluate")
    train.pack_model(job.processing_input("model"))
    _write(job.processing_input("test"), "test", [(1, 1, TP), (0, 1, FP), (1, 0, FN), (0, 0, TN)])
    _write(job.processing_input("validation"), "validation", [(1, 1, TP), (0, 1, FP), (1, 0, FN), (0, 0, TN)])
    check(job.run("evaluate.py", "--operating-point", "best_f1"))
    result = json.loads((job.processing_output("evaluation") / "evaluation.json").read_text())
    block = result["binary_classification_metrics"]
    assert block["confusion_matrix"] == {"0": {"0": TN, "1": FP}, "1": {"0": FN, "1": TP}}
    assert round(block["recall"]["value"], 3) == 0.864
    assert round(block["specificity"]["value"], 3) == 0.824
    assert round(block["precision"]["value"], 3) == 0.839
    assert round(block["accuracy"]["value"], 3) == 0.844
    assert isinstance(block["recall"]["standard_deviation"], float), (
        "527 rows: Model Monitor's spread applies"
    )
    point = result["operating_point"]
    assert {k: point[k] for k in ("metric", "value", "bar", "met")} == {
        "metric": "f1",
        "value": block["f1"]["value"],
        "bar": None,
        "met": 1,
    }
    assert (
        point["upper_bound"] is None
        and point["confidence"] == 0.95
        and "checks only the AUC" in point["rule"]
    )
