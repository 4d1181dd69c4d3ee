"""The demo's monitoring section: the shift planned from the baseline, the shifted copy, the comparison's
verdict and its plot. The demo's own monitoring phase is checked in test_demo_run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulators.sagemaker import MonitoringRun
from rookery.demo.monitoring import Comparison, MonitoringDemoError, Shift, plan_shift, svg_plot


def _run(flagged: set[str], distances: dict[str, float]) -> MonitoringRun:
    rows: list[dict[str, Any]] = [
        {
            "feature": name,
            "method": "psi",
            "distance": distance,
            "threshold": 0.2,
            "verdict": "baseline_drift_check" if name in flagged else "ok",
            "violations": [{"feature_name": name}] if name in flagged else [],
        }
        for name, distance in distances.items()
    ]
    report: dict[str, Any] = {"status": "violations" if flagged else "no violations", "features": rows}
    violations: list[dict[str, Any]] = [v for row in rows for v in row["violations"]]
    return MonitoringRun("data-quality", "e", report, violations, "s3://a/monitoring", Path("job.log"))


STATISTICS: dict[str, Any] = {
    "features": [
        {"name": "mass", "numerical_statistics": {"mean": 4200.0, "std_dev": 800.0}},
        {"name": "bill", "numerical_statistics": {"mean": 44.0, "std_dev": 5.0}},
        {
            "name": "island",
            "string_statistics": {
                "distribution": {
                    "categorical": {
                        "buckets": [
                            {"value": "Biscoe", "count": 120},
                            {"value": "Dream", "count": 90},
                            {"value": "Torgersen", "count": 40},
                        ]
                    }
                }
            },
        },
    ]
}


def test_the_shift_moves_the_last_numeric_feature_by_sigmas_and_the_last_categorical_to_its_rarest() -> None:
    shift = plan_shift(STATISTICS, numeric=["bill", "mass"], categorical=["island"], sigmas=4)
    assert shift == Shift("mass", 3200.0, 4, "island", "Torgersen", 40 / 250)
    assert shift.features == {"mass", "island"}
    assert shift.describe() == (
        "mass moved by 4 standard deviations of the training split (+3,200); island set to 'Torgersen' on "
        "every record, its rarest category in the training split (16% of it)"
    )
    numeric_only = plan_shift(STATISTICS, numeric=["mass"], categorical=[])
    assert numeric_only.features == {"mass"} and numeric_only.categorical is None


def test_a_shift_the_baseline_cannot_plan_names_what_is_missing() -> None:
    with pytest.raises(MonitoringDemoError, match="no standard deviation of 'flipper'"):
        plan_shift(STATISTICS, numeric=["flipper"], categorical=[])
    with pytest.raises(MonitoringDemoError, match="no categories of 'species'"):
        plan_shift(STATISTICS, numeric=["mass"], categorical=["species"])
    with pytest.raises(MonitoringDemoError, match="no numeric feature"):
        plan_shift(STATISTICS, numeric=[], categorical=["island"])


def test_the_shifted_copy_moves_present_values_and_keeps_missing_ones() -> None:
    records: list[dict[str, Any]] = [
        {"mass": 3000, "island": "Dream", "bill": 40.1},
        {"mass": None, "island": None, "bill": 38.0},
    ]
    shift = Shift("mass", 1500.0, 2, "island", "Torgersen", 0.16)
    assert shift.apply(records) == [
        {"mass": 4500, "island": "Torgersen", "bill": 40.1},
        {"mass": None, "island": None, "bill": 38.0},
    ]
    assert records[0] == {"mass": 3000, "island": "Dream", "bill": 40.1}  # a copy


def test_the_comparison_expects_exactly_the_moved_features() -> None:
    clean = _run(set(), {"mass": 0.01, "bill": 0.02, "island": 0.03})
    moved = frozenset({"mass", "island"})
    both = _run({"mass", "island"}, {"mass": 3.0, "bill": 0.02, "island": 0.8})
    assert Comparison(clean, both, moved).as_expected
    assert not Comparison(clean, _run({"mass"}, {"mass": 3.0, "bill": 0.02}), moved).as_expected  # one missed
    extra = _run({"mass", "island", "bill"}, {"mass": 3.0, "bill": 0.5, "island": 0.8})
    assert not Comparison(clean, extra, moved).as_expected  # one too many
    noisy = _run({"bill"}, {"mass": 0.01, "bill": 0.5, "island": 0.03})
    assert not Comparison(noisy, both, moved).as_expected  # drift on the test split
    rows = Comparison(clean, _run({"mass"}, {"mass": 3.0, "bill": 0.02}), frozenset({"mass"})).rows()
    assert rows[0] == {
        "feature": "mass",
        "method": "psi",
        "clean_distance": 0.01,
        "clean_threshold": 0.2,
        "clean_verdict": "ok",
        "shifted_distance": 3.0,
        "shifted_threshold": 0.2,
        "shifted_verdict": "baseline_drift_check",
    }


def test_the_plot_draws_each_feature_against_its_threshold() -> None:
    comparison = Comparison(_run(set(), {"mass": 0.1}), _run({"mass"}, {"mass": 3.0}), frozenset({"mass"}))
    svg = svg_plot(comparison)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "mass" in svg and "baseline_drift_check" in svg
    # 0.1 / 0.2 = half the threshold; 3.0 / 0.2 is cut at 4x the threshold.
    assert 'width="45.0"' in svg and 'width="360.0"' in svg
