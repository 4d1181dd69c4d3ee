"""The tuning step's sampler: a seeded Latin hypercube within the declared ranges
(``emulators/sagemaker/steps/tuning.py``)."""

from __future__ import annotations

import math

from emulators.sagemaker.steps.tuning import sample

RANGES = {
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "3", "MaxValue": "9", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "sub", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}],
}


def test_the_sampler_stays_in_range_and_is_seeded() -> None:
    trials = sample(RANGES, 200, seed=1)
    assert sample(RANGES, 200, seed=1) == trials and sample(RANGES, 200, seed=2) != trials
    depths = [int(t["depth"]) for t in trials]
    assert set(depths) == set(range(3, 10))
    etas = [float(t["eta"]) for t in trials]
    assert all(0.001 <= e <= 1 for e in etas)
    # Logarithmic: as many values in each decade (a linear sampler puts ~90% above 0.1).
    decades = [sum(1 for e in etas if 10**-k < e <= 10 ** (1 - k)) for k in (1, 2, 3)]
    assert all(abs(d - 200 / 3) <= 2 for d in decades), decades
    subs = [float(t["sub"]) for t in trials]
    assert all(0.5 <= s <= 0.999 for s in subs)
    assert sum(s > 0.9 for s in subs) > 60, "reverse-logarithmic values crowd towards 1"
    assert {t["booster"] for t in trials} == {"gbtree", "dart"}


def test_the_sampler_is_a_latin_hypercube() -> None:
    trials = sample(RANGES, 10, seed=0)
    strata = sorted(int(10 * (math.log10(float(t["eta"])) + 3) / 3) for t in trials)
    assert strata == list(range(10))
