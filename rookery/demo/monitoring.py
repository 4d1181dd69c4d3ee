"""The demo's monitoring section: the monitoring job over two windows of the endpoint's capture.

The demo sends the test split to the endpoint (no drift expected) and closes that capture window
(:func:`capture_window`), then sends a copy with chosen features moved (:class:`Shift`, planned by
:func:`plan_shift`: a numeric feature by several of the training split's standard deviations, a
categorical one set to its rarest training category on every record) in a window of its own. (A
category the training split never had cannot show drift on an endpoint: the model refuses the
record with a 400, and only answered invocations are captured.) :func:`compare`
runs the data-quality job over each window, judged by the served version's baseline (its
``DriftCheckBaselines``, what the deployer sets as ``MonitoringBaselineUri`` on AWS).
:class:`Comparison` says whether the outcome is the expected one (nothing on the test split; the
moved features, and only they, on the shifted copy) and draws each feature's distance against its
threshold (:func:`svg_plot`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from emulators.sagemaker import ModelPackage, MonitoringRun, run_monitoring
from emulators.sagemaker.monitoring import BASELINE_SECTIONS
from emulators.sagemaker_runtime.capture import CaptureWriter
from rookery_contracts import monitoring as mon
from stage import Stage

BAR_HEIGHT: Final = 14
LABEL_WIDTH: Final = 150
PLOT_WIDTH: Final = 360
# Distances are drawn as a share of their threshold; bars longer than this are cut (and say so).
MAX_RATIO: Final = 4.0
# How far the shifted copy moves its numeric feature, in standard deviations of the training split:
# far past any threshold, so the verdict does not depend on the split's luck.
SIGMAS: Final = 4.0

Window = tuple[dt.datetime, dt.datetime]


class MonitoringDemoError(RuntimeError):
    """The shift cannot be planned from the baseline; the message names what is missing."""


@dataclass(frozen=True)
class Shift:
    """Move ``numeric`` by ``by`` (``sigmas`` standard deviations) and set ``categorical`` to
    ``category`` (``share`` of the training split) in every record where they are present (missing
    values stay missing)."""

    numeric: str
    by: float
    sigmas: float
    categorical: str | None = None
    category: str | None = None
    share: float | None = None

    @property
    def features(self) -> frozenset[str]:
        return frozenset(f for f in (self.numeric, self.categorical) if f is not None)

    def apply(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        moved = []
        for record in records:
            copy = dict(record)
            value = copy.get(self.numeric)
            if isinstance(value, int | float) and not isinstance(value, bool):
                copy[self.numeric] = value + self.by
            if self.categorical is not None and copy.get(self.categorical) is not None:
                copy[self.categorical] = self.category
            moved.append(copy)
        return moved

    def describe(self) -> str:
        parts = [
            f"{self.numeric} moved by {self.sigmas:g} standard deviations of the training split "
            f"({self.by:+,.4g})"
        ]
        if self.categorical is not None and self.share is not None:
            parts.append(
                f"{self.categorical} set to {self.category!r} on every record, its rarest category in the "
                f"training split ({self.share:.0%} of it)"
            )
        return "; ".join(parts)


def baseline_statistics(home: LocalHome, package: ModelPackage) -> dict[str, Any]:
    """The data-quality ``statistics.json`` of ``package``'s drift-check baselines, from the local S3."""
    section = package.drift_check_baselines.get(BASELINE_SECTIONS[mon.DATA_QUALITY]) or {}
    uri = (section.get("Statistics") or {}).get("S3Uri")
    path = LocalS3(home).path(str(uri)) if uri else None
    if path is None or not path.is_file():
        raise MonitoringDemoError(
            f"model package {package.ref} has no data-quality statistics in its drift-check baselines "
            f"({uri or 'none registered'}); run the pipeline with its Baseline step and approve the new "
            "version"
        )
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def plan_shift(
    statistics: Mapping[str, Any],
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    sigmas: float = SIGMAS,
) -> Shift:
    """The schema's last numeric feature moved by ``sigmas`` of its baseline standard deviation, and its
    last categorical feature (if any) set to its rarest category in the baseline."""
    if not numeric:
        raise MonitoringDemoError("the dataset has no numeric feature to shift")
    found = {f.get("name"): f for f in statistics.get("features", []) if isinstance(f, Mapping)}
    feature = numeric[-1]
    std = ((found.get(feature) or {}).get("numerical_statistics") or {}).get("std_dev")
    if not isinstance(std, int | float) or not std > 0:
        raise MonitoringDemoError(
            f"the baseline statistics give no standard deviation of {feature!r} ({std!r}); rerun the "
            "Baseline step"
        )
    shift = Shift(numeric=feature, by=sigmas * float(std), sigmas=sigmas)
    if not categorical:
        return shift
    name = categorical[-1]
    strings = (found.get(name) or {}).get("string_statistics") or {}
    buckets = {
        str(b["value"]): int(b["count"])
        for b in (strings.get("distribution") or {}).get("categorical", {}).get("buckets", [])
        if isinstance(b, Mapping) and "value" in b and "count" in b
    }
    total = sum(buckets.values())
    if len(buckets) < 2 or not total:
        raise MonitoringDemoError(
            f"the baseline statistics give no categories of {name!r} to choose from; rerun the Baseline step"
        )
    rarest = min(sorted(buckets), key=lambda value: buckets[value])
    return replace(shift, categorical=name, category=rarest, share=buckets[rarest] / total)


def capture_window(capture: CaptureWriter, send: Callable[[], object]) -> Window:
    """Run ``send`` in a capture window of its own: the open capture file is published before and
    after it (every invocation is queued for capture before its answer), so the files started between
    the two times returned hold exactly what ``send`` sent."""
    capture.roll()
    start = dt.datetime.now(dt.UTC)
    send()
    capture.roll()
    return start, dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Comparison:
    """The data-quality reports of the test split's window and the shifted copy's."""

    clean: MonitoringRun
    moved: MonitoringRun
    features: frozenset[str]  # the features the shifted copy moved

    @staticmethod
    def flagged(run: MonitoringRun) -> set[str]:
        return {row["feature"] for row in run.report.get("features", []) if row["violations"]}

    @property
    def as_expected(self) -> bool:
        """No violation on the test split; the moved features, and only they, on the shifted copy."""
        return not self.flagged(self.clean) and self.flagged(self.moved) == set(self.features)

    def rows(self) -> list[dict[str, Any]]:
        """Per feature: distance, threshold and verdict for the test split and the shifted copy."""
        moved = {row["feature"]: row for row in self.moved.report.get("features", [])}
        found = []
        for row in self.clean.report.get("features", []):
            other = moved.get(row["feature"], {})
            found.append(
                {
                    "feature": row["feature"],
                    "method": row["method"],
                    "clean_distance": row["distance"],
                    "clean_threshold": row["threshold"],
                    "clean_verdict": row["verdict"],
                    "shifted_distance": other.get("distance"),
                    "shifted_threshold": other.get("threshold"),
                    "shifted_verdict": other.get("verdict"),
                }
            )
        return found


def compare(
    home: LocalHome,
    stage: Stage,
    package: ModelPackage,
    *,
    endpoint: str,
    clean: Window,
    shifted: Window,
    features: frozenset[str],
    raw_bucket: str,
    artifacts_bucket: str,
) -> Comparison:
    """Run the data-quality job over each window of ``endpoint``'s capture with ``package``'s baseline."""

    def run(window: Window) -> MonitoringRun:
        start, end = window
        return run_monitoring(
            home,
            stage,
            package,
            kind=mon.DATA_QUALITY,
            endpoint=endpoint,
            raw_bucket=raw_bucket,
            artifacts_bucket=artifacts_bucket,
            now=end,
            start=start,
            end=end,
        )

    return Comparison(run(clean), run(shifted), features)


@dataclass(frozen=True)
class MonitoringStory:
    """The monitoring section's data: what was sent, the baseline it was judged by, both reports."""

    endpoint: str
    package: str  # the served version (<group>/<version>)
    baseline: str  # its data-quality statistics (the baseline's prefix is what the deployer sets on AWS)
    shift: Shift
    comparison: Comparison
    sent: int  # records sent in each window
    plot: str  # svg_plot's markup

    @property
    def flagged(self) -> list[str]:
        return sorted(Comparison.flagged(self.comparison.moved))


def _ratio(distance: float | None, threshold: float | None) -> float:
    if distance is None or not threshold:
        return 0.0
    return min(distance / threshold, MAX_RATIO)


def svg_plot(comparison: Comparison) -> str:
    """Each feature's distance as a share of its threshold, test split (grey) and shifted copy (red);
    the line marks the threshold (a bar past it is a drift violation)."""
    rows = comparison.rows()
    scale = PLOT_WIDTH / MAX_RATIO
    height = len(rows) * (2 * BAR_HEIGHT + 8) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_WIDTH + PLOT_WIDTH + 20}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    y = 4
    for row in rows:
        parts.append(f'<text x="0" y="{y + BAR_HEIGHT + 3}">{html.escape(row["feature"])}</text>')
        for prefix, colour, label in (
            ("clean", "#999", "test split"),
            ("shifted", "#c0392b", "shifted copy"),
        ):
            ratio = _ratio(row[f"{prefix}_distance"], row[f"{prefix}_threshold"])
            verdict = html.escape(str(row[f"{prefix}_verdict"]))
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{ratio * scale:.1f}" height="{BAR_HEIGHT - 2}" '
                f'fill="{colour}"><title>{label}: {verdict}</title></rect>'
            )
            y += BAR_HEIGHT
        y += 8
    threshold_x = LABEL_WIDTH + scale
    parts.append(
        f'<line x1="{threshold_x}" y1="0" x2="{threshold_x}" y2="{y}" stroke="#000" stroke-dasharray="3"/>'
    )
    parts.append(f'<text x="{threshold_x + 4}" y="{y + 12}">threshold (bars cut at {MAX_RATIO:g}x)</text>')
    parts.append("</svg>")
    return "".join(parts)
