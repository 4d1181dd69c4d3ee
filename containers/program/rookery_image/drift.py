"""Judging a window's feature profiles against the baseline: distances, thresholds, violations.

Distances: a numeric feature's **population stability index** (PSI) over the baseline's decile
bins, ``sum((q - p) * ln(q / p))`` with half a count added to every bin (an empty bin has no
logarithm); a categorical feature's **L-infinity** distance, the largest change in one category's
share (categories the baseline never had count in the window's shares).

A distance on a small window is noisy, so the threshold applied is the larger of the stage's and
the distance a window of the same size drawn from the baseline's own distribution exceeds only once
in a thousand windows: for PSI (about a chi-square statistic divided by the effective sample size)
``chi2_0.999(bins - 1) / n_eff``; for L-infinity ``z_0.9995 * sqrt(1 / (4 n_eff))``, with
``n_eff = n * m / (n + m)`` for ``n`` window and ``m`` baseline values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from rookery_contracts import monitoring as mon
from rookery_image.profiles import OTHER, CategoricalProfile, NumericProfile, Profile

# One window in a thousand from the baseline's own distribution exceeds the noise floor.
_Z_ONE_SIDED: Final = 3.090  # the 0.999 quantile of the standard normal
_Z_TWO_SIDED: Final = 3.291  # the 0.9995 quantile


def chi2_quantile(dof: int, z: float = _Z_ONE_SIDED) -> float:
    """The chi-square quantile at the normal quantile ``z`` (Wilson-Hilferty; within 1% for dof >= 3)."""
    k = float(max(dof, 1))
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def effective_size(window: int, baseline: int) -> float:
    return window * baseline / (window + baseline) if window and baseline else 0.0


def psi(baseline: Sequence[int], window: Sequence[int]) -> float:
    """PSI of the window's bin counts against the baseline's (same bins)."""
    b = np.asarray(baseline, dtype=np.float64) + 0.5
    w = np.asarray(window, dtype=np.float64) + 0.5
    p, q = b / b.sum(), w / w.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi_floor(bins: int, n_eff: float) -> float:
    return chi2_quantile(bins - 1) / n_eff if n_eff else math.inf


def linf(baseline: Mapping[str, int], window: Mapping[str, int]) -> float:
    """The largest absolute change of one category's share."""
    nb, nw = sum(baseline.values()), sum(window.values())
    if not nb or not nw:
        return 0.0
    keys = set(baseline) | set(window)
    return max(abs(window.get(k, 0) / nw - baseline.get(k, 0) / nb) for k in keys)


def linf_floor(n_eff: float) -> float:
    return _Z_TWO_SIDED * math.sqrt(0.25 / n_eff) if n_eff else math.inf


@dataclass
class FeatureVerdict:
    """One feature of the window against its baseline: the table row and its violations."""

    name: str
    kind: str  # "numeric" | "categorical"
    method: str  # mon.PSI | mon.LINF
    baseline: str
    current: str
    distance: float | None
    threshold: float
    stage_threshold: float
    violations: list[dict[str, str]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.violations:
            return ", ".join(v["constraint_check_type"] for v in self.violations)
        return "no data" if self.distance is None else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.name,
            "kind": self.kind,
            "method": self.method,
            "baseline": self.baseline,
            "current": self.current,
            "distance": None if self.distance is None else round(self.distance, 6),
            "threshold": None if math.isinf(self.threshold) else round(self.threshold, 6),
            "stage_threshold": self.stage_threshold,
            "verdict": self.verdict,
            "violations": self.violations,
        }


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _common(prof: Profile, constraint: Mapping[str, Any], config: Mapping[str, Any]) -> list[dict[str, str]]:
    """Absent fields, invalid values and missing values: the checks numeric and categorical share."""
    name, counts = prof.name, prof.counts
    tolerance = float(config.get("datatype_check_threshold", 0.0))
    found = []
    if counts.total and counts.absent / counts.total > tolerance:
        found.append(
            _violation(
                name,
                mon.MISSING_COLUMN_CHECK,
                f"{counts.absent} of {counts.total} records ({counts.absent / counts.total:.1%}) lack the "
                f"field {name!r} (tolerated: {tolerance:.1%})",
            )
        )
    invalid = counts.share(counts.invalid)
    if invalid > tolerance:
        expected = constraint.get("inferred_type", "?")
        found.append(
            _violation(
                name,
                mon.DATA_TYPE_CHECK,
                f"{counts.invalid} value(s) ({invalid:.1%}) are not of type {expected} "
                f"(tolerated: {tolerance:.1%})",
            )
        )
    required = float(constraint.get("completeness", 0.0))
    completeness = counts.share(counts.present)
    if counts.observed and completeness < required:
        found.append(
            _violation(
                name,
                mon.COMPLETENESS_CHECK,
                f"completeness {completeness:.1%} is below the required {required:.1%} "
                f"({counts.missing} missing, {counts.invalid} invalid of {counts.observed})",
            )
        )
    return found


def _override(constraint: Mapping[str, Any], key: str, default: float) -> float:
    overrides = constraint.get("monitoringConfigOverrides") or {}
    return float(overrides.get(key, default))


def judge_numeric(
    prof: NumericProfile, base: Mapping[str, Any], constraint: Mapping[str, Any], config: Mapping[str, Any]
) -> FeatureVerdict:
    stats = base["numerical_statistics"]
    buckets = stats.get("distribution", {}).get("kll", {}).get("buckets", [])
    base_counts = [int(b["count"]) for b in buckets]
    stage = _override(
        constraint, "comparison_threshold", config["distribution_constraints"]["comparison_threshold"]
    )
    verdict = FeatureVerdict(
        name=prof.name,
        kind="numeric",
        method=mon.PSI,
        baseline=_numeric_summary(stats.get("mean"), base),
        current=_numeric_summary(prof.mean if prof.counts.present else None, prof.statistics()),
        distance=None,
        threshold=math.inf,
        stage_threshold=stage,
        violations=_common(prof, constraint, config),
    )
    if prof.counts.present and prof.bins is not None and base_counts:
        verdict.distance = psi(base_counts, prof.bins.tolist())
        n_eff = effective_size(prof.counts.present, sum(base_counts))
        verdict.threshold = max(stage, psi_floor(len(base_counts), n_eff))
        if verdict.distance > verdict.threshold:
            verdict.violations.append(
                _violation(
                    prof.name,
                    mon.BASELINE_DRIFT_CHECK,
                    f"PSI {verdict.distance:.4f} over the baseline's deciles exceeds {verdict.threshold:.4f} "
                    f"(stage threshold {stage:g}; {prof.counts.present} values in the window)",
                )
            )
    return verdict


def judge_categorical(
    prof: CategoricalProfile,
    base: Mapping[str, Any],
    constraint: Mapping[str, Any],
    config: Mapping[str, Any],
) -> FeatureVerdict:
    stats = base["string_statistics"]
    base_counts = {b["value"]: int(b["count"]) for b in stats["distribution"]["categorical"]["buckets"]}
    stage = _override(constraint, "comparison_threshold", 0.1)
    verdict = FeatureVerdict(
        name=prof.name,
        kind="categorical",
        method=mon.LINF,
        baseline=_categorical_summary(base_counts, base),
        current=_categorical_summary(dict(prof.categories), prof.statistics()),
        distance=None,
        threshold=math.inf,
        stage_threshold=stage,
        violations=_common(prof, constraint, config),
    )
    domain = set((constraint.get("string_constraints") or {}).get("domains") or base_counts)
    unknown = {k: v for k, v in prof.categories.items() if k not in domain}
    share = sum(unknown.values()) / prof.counts.present if prof.counts.present else 0.0
    tolerated = float(config.get("domain_content_threshold", 0.0))
    if share > tolerated:
        shown = sorted(unknown, key=lambda k: -unknown[k])[:5]
        names = ["(more than the tracked categories)" if k == OTHER else k for k in shown]
        verdict.violations.append(
            _violation(
                prof.name,
                mon.CATEGORICAL_VALUES_CHECK,
                f"{share:.1%} of values are categories the training split never had ({names}); "
                f"tolerated: {tolerated:.1%}",
            )
        )
    if prof.counts.present:
        verdict.distance = linf(base_counts, prof.categories)
        n_eff = effective_size(prof.counts.present, sum(base_counts.values()))
        verdict.threshold = max(stage, linf_floor(n_eff))
        if verdict.distance > verdict.threshold:
            verdict.violations.append(
                _violation(
                    prof.name,
                    mon.BASELINE_DRIFT_CHECK,
                    f"L-infinity distance {verdict.distance:.4f} of the category shares exceeds "
                    f"{verdict.threshold:.4f} (stage threshold {stage:g}; {prof.counts.present} values)",
                )
            )
    return verdict


def _missing_share(feature_stats: Mapping[str, Any]) -> str:
    section = feature_stats.get("numerical_statistics") or feature_stats.get("string_statistics") or {}
    common = section.get("common") or {}
    total = int(common.get("num_present", 0)) + int(common.get("num_missing", 0))
    return f"{int(common.get('num_missing', 0)) / total:.1%}" if total else "-"


def _numeric_summary(mean: float | None, feature_stats: Mapping[str, Any]) -> str:
    shown = "-" if mean is None else f"{mean:.4g}"
    return f"mean {shown}, missing {_missing_share(feature_stats)}"


def _categorical_summary(counts: Mapping[str, int], feature_stats: Mapping[str, Any]) -> str:
    total = sum(counts.values())
    if not total:
        return f"no values, missing {_missing_share(feature_stats)}"
    top = max(counts, key=lambda k: counts[k])
    return f"{top} {counts[top] / total:.0%}, missing {_missing_share(feature_stats)}"
