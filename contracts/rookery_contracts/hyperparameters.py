"""The training hyperparameters: every name the project image accepts, its type and range, the defaults.

Names follow SageMaker's built-in XGBoost algorithm, so a stage (``[ml.training.hyperparameters]``)
or a tuning range reads the same for either image; ``checkpoint_frequency`` is rookery's own. The
stage model validates a stage's values with :func:`check` when the stage is loaded and merges them
over :data:`TRAINING_DEFAULTS`; the image's training job converts the strings SageMaker hands it with
:func:`convert`. Every problem names the hyperparameter, the value, the rule and an example.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Metrics XGBoost maximizes; every other allowed metric is minimized (as XGBoost's early stopping does).
MAXIMIZED_METRICS: Final = ("auc", "aucpr")
_METRIC: Final = re.compile(r"^(auc|aucpr|logloss|error|rmse|mae)$|^error@(0(\.\d+)?|1(\.0+)?)$")
# SageMaker adds e.g. _tuning_objective_metric for tuning jobs; these are not hyperparameters.
IGNORED_PREFIXES: Final = ("sagemaker_", "_")


@dataclass(frozen=True)
class Spec:
    kind: str  # "int", "float", "choice", "metrics"
    rule: str  # human form of the constraint, for error messages
    example: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()


def _int(low: float | None, high: float | None, rule: str, example: str) -> Spec:
    return Spec("int", rule, example, low, high)


def _float(low: float | None, high: float | None, rule: str, example: str, *, low_open: bool = False) -> Spec:
    return Spec("float", rule, example, low, high, low_open)


def _choice(*choices: str) -> Spec:
    return Spec("choice", f"one of {list(choices)}", choices[0], choices=choices)


SPECS: Final[Mapping[str, Spec]] = {
    "num_round": _int(1, 100_000, "a whole number of boosting rounds >= 1", "200"),
    "objective": _choice("binary:logistic"),
    "eval_metric": Spec("metrics", "a comma list of auc, aucpr, logloss, error, error@t, rmse, mae", "auc"),
    "booster": _choice("gbtree", "dart"),
    "eta": _float(0, 1, "a step size in [0, 1]", "0.2"),
    "gamma": _float(0, None, "a minimum loss reduction >= 0", "0"),
    "max_depth": _int(0, 64, "a tree depth in 0..64 (0 = unlimited, with grow_policy=lossguide)", "6"),
    "min_child_weight": _float(0, None, "a minimum child weight >= 0", "1"),
    "max_delta_step": _float(0, None, "a step bound >= 0 (0 = none)", "0"),
    "subsample": _float(0, 1, "a row sampling ratio in (0, 1]", "0.8", low_open=True),
    "colsample_bytree": _float(0, 1, "a column sampling ratio in (0, 1]", "0.8", low_open=True),
    "colsample_bylevel": _float(0, 1, "a column sampling ratio in (0, 1]", "1", low_open=True),
    "colsample_bynode": _float(0, 1, "a column sampling ratio in (0, 1]", "1", low_open=True),
    "lambda": _float(0, None, "an L2 weight >= 0", "1"),
    "alpha": _float(0, None, "an L1 weight >= 0", "0"),
    "scale_pos_weight": _float(
        0, None, "a positive weight > 0 (about negatives / positives)", "1", low_open=True
    ),
    "base_score": _float(0, 1, "an initial probability in (0, 1)", "0.5", low_open=True),
    "tree_method": _choice("auto", "exact", "approx", "hist"),
    "grow_policy": _choice("depthwise", "lossguide"),
    "max_leaves": _int(0, None, "a leaf count >= 0 (0 = unlimited)", "0"),
    "max_bin": _int(2, 65535, "a histogram bin count in 2..65535", "256"),
    "num_parallel_tree": _int(1, 1000, "a forest size >= 1", "1"),
    "rate_drop": _float(0, 1, "a dropout rate in [0, 1] (booster=dart)", "0.1"),
    "skip_drop": _float(0, 1, "a skip probability in [0, 1] (booster=dart)", "0.5"),
    "seed": _int(0, 2**31 - 1, "a random seed in 0..2147483647", "0"),
    "nthread": _int(1, 1024, "a thread count >= 1 (default: all cores)", "2"),
    "verbosity": _int(0, 3, "a log level in 0..3", "1"),
    "early_stopping_rounds": _int(1, 100_000, "a patience in rounds >= 1 (needs a validation channel)", "20"),
    "checkpoint_frequency": _int(1, 100_000, "rounds between checkpoints, >= 1", "10"),
}
# What the image assumes when a job leaves these out (AUC is what tuning and the gate use).
IMAGE_DEFAULTS: Final[Mapping[str, Any]] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "checkpoint_frequency": 10,
}
# The pipeline's training defaults; a stage's values are merged over them (a stage that sets one
# keeps the others).
TRAINING_DEFAULTS: Final[Mapping[str, str | int | float]] = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "num_round": 200,
    "max_depth": 5,
    "eta": 0.2,
    "min_child_weight": 1,
    "subsample": 0.8,
    "early_stopping_rounds": 20,
}


class HyperparameterError(ValueError):
    """Hyperparameters are invalid; ``problems`` holds one sentence per problem, each with the name,
    the value and the fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def _problem(name: str, value: object, spec: Spec, what: str) -> str:
    return f"hyperparameter {name!r} = {value!r} {what}; it must be {spec.rule}, e.g. {name}={spec.example}"


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, SPECS, n=1, cutoff=0.7)
    if close:
        return f"unknown hyperparameter {name!r} (did you mean {close[0]!r}?)"
    names = ", ".join(SPECS)
    return f"unknown hyperparameter {name!r}; rookery's image accepts SageMaker XGBoost names: {names}"


def convert(name: str, value: object) -> Any:
    """One value (SageMaker passes strings; a stage may give numbers) as its type; ``HyperparameterError``."""
    if name not in SPECS:
        raise HyperparameterError([_unknown(name)])
    spec = SPECS[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HyperparameterError([_problem(name, value, spec, f"is a {type(value).__name__}")])
    text = str(value).strip()
    if spec.kind == "choice":
        if text not in spec.choices:
            raise HyperparameterError([_problem(name, value, spec, "is not supported")])
        return text
    if spec.kind == "metrics":
        metrics = tuple(m.strip() for m in text.split(",") if m.strip())
        bad = [m for m in metrics if not _METRIC.match(m)]
        if not metrics or bad:
            what = f"names unsupported metrics {bad}" if bad else "is empty"
            raise HyperparameterError([_problem(name, value, spec, what)])
        return metrics
    try:
        number = float(text)
    except ValueError:
        raise HyperparameterError([_problem(name, value, spec, "is not a number")]) from None
    if not math.isfinite(number):
        raise HyperparameterError([_problem(name, value, spec, "is not a finite number")])
    if spec.kind == "int":
        if not number.is_integer():
            raise HyperparameterError([_problem(name, value, spec, "is not a whole number")])
        number = int(number)
    too_low = spec.low is not None and (number <= spec.low if spec.low_open else number < spec.low)
    too_high = spec.high is not None and number > spec.high
    if too_low or too_high:
        raise HyperparameterError([_problem(name, value, spec, "is out of range")])
    return number


def combination_problems(values: Mapping[str, Any]) -> list[str]:
    """Rules across hyperparameters, on converted values."""
    if values.get("max_depth") == 0 and values.get("grow_policy") != "lossguide":
        return [
            "hyperparameter 'max_depth' = 0 (unlimited) needs grow_policy=lossguide; set max_depth >= 1 "
            "or grow_policy=lossguide"
        ]
    return []


def check(values: Mapping[str, object]) -> dict[str, Any]:
    """Convert every value; ``HyperparameterError`` listing every problem at once."""
    problems: list[str] = []
    converted: dict[str, Any] = {}
    for name, value in values.items():
        try:
            converted[name] = convert(name, value)
        except HyperparameterError as exc:
            problems.extend(exc.problems)
    problems.extend(combination_problems(converted) if not problems else [])
    if problems:
        raise HyperparameterError(problems)
    return converted
