"""The demo's monitoring section: the same monitoring job over the test split and over a shifted copy.

The demo sends the test split to one local endpoint (no drift expected) and a copy with one numeric
feature moved (:func:`shifted`) to another, then calls :func:`compare`: the data-quality job of
each endpoint's capture, judged by the served version's baseline. :class:`Comparison` says whether
the outcome is the expected one (nothing on the clean traffic, the moved feature and only it on
the shifted traffic) and draws each feature's distance against its threshold (:func:`svg_plot`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from emulators.core.home import LocalHome
from emulators.sagemaker import ModelPackage, MonitoringRun, run_monitoring
from rookery_contracts import monitoring as mon
from stage import Stage

BAR_HEIGHT: Final = 14
LABEL_WIDTH: Final = 150
PLOT_WIDTH: Final = 360
# Distances are drawn as a share of their threshold; bars longer than this are cut (and say so).
MAX_RATIO: Final = 4.0


def shifted(records: Sequence[Mapping[str, Any]], feature: str, by: float) -> list[dict[str, Any]]:
    """A copy of ``records`` with the numeric ``feature`` moved by ``by`` (missing values stay missing)."""
    moved = []
    for record in records:
        copy = dict(record)
        value = copy.get(feature)
        if isinstance(value, int | float) and not isinstance(value, bool):
            copy[feature] = value + by
        moved.append(copy)
    return moved


@dataclass(frozen=True)
class Comparison:
    """The data-quality reports of the clean and the shifted traffic."""

    clean: MonitoringRun
    moved: MonitoringRun
    feature: str  # the feature the shifted copy moved

    @staticmethod
    def flagged(run: MonitoringRun) -> set[str]:
        return {row["feature"] for row in run.report.get("features", []) if row["violations"]}

    @property
    def as_expected(self) -> bool:
        """No violation on the clean traffic; the moved feature, and only it, on the shifted traffic."""
        return not self.flagged(self.clean) and self.flagged(self.moved) == {self.feature}

    def rows(self) -> list[dict[str, Any]]:
        """Per feature: distance, threshold and verdict for the clean and the shifted traffic."""
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
    clean_endpoint: str,
    shifted_endpoint: str,
    feature: str,
    raw_bucket: str,
    artifacts_bucket: str,
) -> Comparison:
    """Run the data-quality job over both endpoints' capture with ``package``'s baseline."""

    def run(endpoint: str) -> MonitoringRun:
        return run_monitoring(
            home,
            stage,
            package,
            kind=mon.DATA_QUALITY,
            endpoint=endpoint,
            raw_bucket=raw_bucket,
            artifacts_bucket=artifacts_bucket,
        )

    return Comparison(run(clean_endpoint), run(shifted_endpoint), feature)


def _ratio(distance: float | None, threshold: float | None) -> float:
    if distance is None or not threshold:
        return 0.0
    return min(distance / threshold, MAX_RATIO)


def svg_plot(comparison: Comparison) -> str:
    """Each feature's distance as a share of its threshold, clean (grey) and shifted (red) traffic;
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
        for prefix, colour in (("clean", "#999"), ("shifted", "#c0392b")):
            ratio = _ratio(row[f"{prefix}_distance"], row[f"{prefix}_threshold"])
            verdict = html.escape(str(row[f"{prefix}_verdict"]))
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{ratio * scale:.1f}" height="{BAR_HEIGHT - 2}" '
                f'fill="{colour}"><title>{prefix}: {verdict}</title></rect>'
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
