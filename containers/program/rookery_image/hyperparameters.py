"""Training hyperparameters: SageMaker's strings in, validated XGBoost settings out.

The names, types, ranges and defaults are ``rookery_contracts.hyperparameters``: the same definitions
validate a stage's values when it is loaded. Every bad value is a user error that names the
hyperparameter, the value, the rule and an example.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rookery_contracts.hyperparameters import (
    IGNORED_PREFIXES,
    IMAGE_DEFAULTS,
    MAXIMIZED_METRICS,
    HyperparameterError,
    check,
)
from rookery_image.contract import UserError

__all__ = ["MAXIMIZED_METRICS", "Hyperparameters", "parse"]

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


def parse(raw: Mapping[str, str]) -> Hyperparameters:
    """Validate hyperparameters.json values (strings) into typed training settings."""
    given = {k: str(v) for k, v in raw.items() if not k.startswith(IGNORED_PREFIXES)}
    try:
        values = check(given)
    except HyperparameterError as exc:
        raise UserError(exc.problems[0]) from None
    if "num_round" not in given:
        raise UserError(
            "hyperparameter 'num_round' is required: the number of boosting rounds, e.g. num_round=200"
        )
    settings = {**IMAGE_DEFAULTS, **values}
    if isinstance(settings["eval_metric"], str):
        settings["eval_metric"] = (settings["eval_metric"],)
    booster_params = {k: v for k, v in settings.items() if k not in LOOP_SETTINGS}
    return Hyperparameters(
        num_round=int(settings["num_round"]),
        eval_metrics=tuple(settings["eval_metric"]),
        early_stopping_rounds=settings.get("early_stopping_rounds"),
        checkpoint_frequency=int(settings["checkpoint_frequency"]),
        booster_params=booster_params,
        given=given,
    )
