"""The demo's monitoring section: the shifted copy, the comparison's verdict and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulators.sagemaker import MonitoringRun
from rookery.demo.monitoring import Comparison, shifted, svg_plot


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


def test_shifted_moves_one_numeric_feature_and_keeps_missing_values() -> None:
    records: list[dict[str, Any]] = [{"mass": 3000, "island": "Dream"}, {"mass": None, "island": "Biscoe"}]
    assert shifted(records, "mass", 1500) == [
        {"mass": 4500, "island": "Dream"},
        {"mass": None, "island": "Biscoe"},
    ]
    assert records[0]["mass"] == 3000  # a copy


def test_the_comparison_expects_the_moved_feature_only() -> None:
    clean = _run(set(), {"mass": 0.01, "bill": 0.02})
    assert Comparison(clean, _run({"mass"}, {"mass": 3.0, "bill": 0.02}), "mass").as_expected
    assert not Comparison(clean, _run({"mass", "bill"}, {"mass": 3.0, "bill": 0.5}), "mass").as_expected
    assert not Comparison(
        _run({"bill"}, {"mass": 0.01, "bill": 0.5}), _run({"mass"}, {"mass": 3.0, "bill": 0.0}), "mass"
    ).as_expected
    rows = Comparison(clean, _run({"mass"}, {"mass": 3.0, "bill": 0.02}), "mass").rows()
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
    comparison = Comparison(_run(set(), {"mass": 0.1}), _run({"mass"}, {"mass": 3.0}), "mass")
    svg = svg_plot(comparison)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "mass" in svg and "baseline_drift_check" in svg
    # 0.1 / 0.2 = half the threshold; 3.0 / 0.2 is cut at 4x the threshold.
    assert 'width="45.0"' in svg and 'width="360.0"' in svg
