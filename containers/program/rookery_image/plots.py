"""PNG plots of the evaluation: the ROC curve and the confusion matrix (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display in a processing job

import matplotlib.pyplot as plt
import numpy as np

from rookery_contracts.evaluation import (
    CONFUSION_MATRIX_KEY,
    METRICS_KEY,
    THRESHOLD_KEY,
    THRESHOLD_PATH,
    value_at,
)
from rookery_image import metrics


def roc_png(path: Path, labels: np.ndarray, scores: np.ndarray, result: dict[str, Any]) -> None:
    fpr, tpr = metrics.roc_curve(labels, scores)
    block = result[METRICS_KEY]
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(fpr, tpr, lw=2, label=f"ROC (AUC = {block['auc']['value']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="grey", label="chance")
    chosen = result[THRESHOLD_KEY]
    ax.scatter(
        [block["false_positive_rate"]["value"]],
        [block["true_positive_rate"]["value"]],
        color="red",
        zorder=3,
        label=f"threshold {chosen['value']:.3f} ({chosen['operating_point']})",
    )
    ax.set(
        xlabel="false positive rate (1 - specificity)",
        ylabel="true positive rate (sensitivity)",
        title="ROC curve, test split",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def confusion_png(path: Path, result: dict[str, Any]) -> None:
    matrix = result[METRICS_KEY][CONFUSION_MATRIX_KEY]
    data = result["dataset"]
    names = [data["negative_class"], data["positive_class"]]
    counts = np.array([[matrix["0"]["0"], matrix["0"]["1"]], [matrix["1"]["0"], matrix["1"]["1"]]])
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    ax.imshow(counts, cmap="Blues")
    for (row, col), count in np.ndenumerate(counts):
        shade = "white" if count > counts.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=shade, fontsize=14)
    ax.set_xticks([0, 1], labels=names)
    ax.set_yticks([0, 1], labels=names)
    ax.set(
        xlabel="predicted",
        ylabel="actual",
        title=f"confusion matrix at {value_at(result, THRESHOLD_PATH):.3f}",
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
