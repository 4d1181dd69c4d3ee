"""Training hyperparameters: SageMaker's strings in, validated XGBoost settings out.

Names follow SageMaker's built-in XGBoost algorithm, so a stage config (or a tuning range) reads
the same for either image; ``checkpoint_frequency`` is rookery's own. Every bad value is a user
error that names the hyperparameter, the value, the rule and an example.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rookery_image.contract import UserError

# Metrics XGBoost maximizes; every other allowed metric is minimized (as XGBoost's early stopping does).
MAXIMIZED_METRICS = ("auc", "aucpr")
_METRIC = re.compile(r"^(auc|aucpr|logloss|error|rmse|mae)$|^error@(0(\.\d+)?|1(\.0+)?)$")
IGNORED_PREFIXES = ("sagemaker_", "_")  # SageMaker adds e.g. _tuning_objective_metric for tuning jobs


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


SPECS: Mapping[str, Spec] = {
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
# rookery's defaults where XGBoost's would not fit the pipeline (AUC is what tuning and the gate use).
DEFAULTS = {"objective": "binary:logistic", "eval_metric": "auc", "checkpoint_frequency": 10}
# Settings that steer the training loop rather than the booster.
LOOP_SETTINGS = ("num_round", "early_stopping_rounds", "checkpoint_frequency", "eval_metric")


@dataclass(frozen=True)
class Hyperparameters:
    num_round: int
    eval_metrics: tuple[str, ...]
    early_stopping_rounds: int | None
    checkpoint_frequency: int
    booster_params: dict[str, Any]
    given: dict[str, str]

    @property
    def stopping_metric(self) -> str:
        """Early stopping follows the last metric, as XGBoost does."""
        return self.eval_metrics[-1]

    def fingerprint(self) -> str:
        """Identifies the settings that shape the model (the checkpoint rhythm does not)."""
        shaping = {k: v for k, v in self.given.items() if k != "checkpoint_frequency"}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def _problem(name: str, value: str, spec: Spec, what: str) -> UserError:
    return UserError(
        f"hyperparameter {name!r} = {value!r} {what}; it must be {spec.rule}, e.g. {name}={spec.example}"
    )


def _convert(name: str, value: str, spec: Spec) -> Any:
    text = value.strip()
    if spec.kind == "choice":
        if text not in spec.choices:
            raise _problem(name, value, spec, "is not supported")
        return text
    if spec.kind == "metrics":
        metrics = tuple(m.strip() for m in text.split(",") if m.strip())
        bad = [m for m in metrics if not _METRIC.match(m)]
        if not metrics or bad:
            raise _problem(name, value, spec, f"names unsupported metrics {bad}" if bad else "is empty")
        return metrics
    try:
        number = float(text)
    except ValueError:
        raise _problem(name, value, spec, "is not a number") from None
    if not math.isfinite(number):
        raise _problem(name, value, spec, "is not a finite number")
    if spec.kind == "int":
        if not number.is_integer():
            raise _problem(name, value, spec, "is not a whole number")
        number = int(number)
    too_low = spec.low is not None and (number <= spec.low if spec.low_open else number < spec.low)
    too_high = spec.high is not None and number > spec.high
    if too_low or too_high:
        raise _problem(name, value, spec, "is out of range")
    return number


def parse(raw: Mapping[str, str]) -> Hyperparameters:
    """Validate hyperparameters.json values (strings) into typed training settings."""
    given = {k: str(v) for k, v in raw.items() if not k.startswith(IGNORED_PREFIXES)}
    unknown = sorted(set(given) - set(SPECS))
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, SPECS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(
            f"unknown hyperparameter {name!r}{hint}; rookery's image accepts SageMaker XGBoost names: "
            f"{', '.join(sorted(SPECS))}"
        )
    if "num_round" not in given:
        raise UserError(
            "hyperparameter 'num_round' is required: the number of boosting rounds, e.g. num_round=200"
        )
    values = {name: _convert(name, text, SPECS[name]) for name, text in given.items()}
    settings = {**DEFAULTS, **values}
    if isinstance(settings["eval_metric"], str):
        settings["eval_metric"] = (settings["eval_metric"],)
    booster_params = {k: v for k, v in settings.items() if k not in LOOP_SETTINGS}
    if booster_params.get("max_depth") == 0 and booster_params.get("grow_policy") != "lossguide":
        raise UserError(
            "hyperparameter 'max_depth' = '0' (unlimited) needs grow_policy=lossguide; set max_depth >= 1 or "
            "grow_policy=lossguide"
        )
    return Hyperparameters(
        num_round=int(settings["num_round"]),
        eval_metrics=tuple(settings["eval_metric"]),
        early_stopping_rounds=settings.get("early_stopping_rounds"),
        checkpoint_frequency=int(settings["checkpoint_frequency"]),
        booster_params=booster_params,
        given=given,
    )
