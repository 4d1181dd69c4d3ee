"""Loading a stage file: ``infra/stages/<name>.toml`` into a validated :class:`~stage.model.Stage`.

Every error is a :class:`~stage.model.ConfigError` that names the file, each bad field, its value
and the fix.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rookery_contracts.hyperparameters import HyperparameterError
from rookery_contracts.schema import MISSING, SchemaError
from stage.model import ConfigError, Stage
from stage.paths import REPO_ROOT, STAGES_DIR


def available_stages(stages_dir: Path = STAGES_DIR) -> list[str]:
    return sorted(p.stem for p in stages_dir.glob("*.toml"))


# Why a bound exists, for the built-in constraint errors that carry no fix of their own.
_FIELD_HINTS: Mapping[str, str] = {
    "max_azs": "subnets, endpoints and jobs need at least two Availability Zones to survive one AZ failing",
    "ml.training.hyperparameters": "hyperparameters are strings or numbers",
    "ml.operating_point.confidence": (
        "the level of the one-sided bounds the threshold's margin and the gate use: 0.5 is no margin, "
        "0.95 the default"
    ),
    "ml.training.image_exception_reason": "write a reason a reviewer can accept (at least 20 characters)",
    "monitoring.reaction": (
        '"notify" publishes each monitoring alarm to the topic; "retrain" also starts the pipeline'
    ),
    "monitoring.retrain_min_interval_hours": (
        "whole hours between retraining runs an alarm may start (1 to 720); it stops a flapping alarm "
        "from starting a retraining storm"
    ),
}


def _describe(error: Mapping[str, Any]) -> list[str]:
    loc = ".".join(str(p) for p in error["loc"]) or "(stage)"
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, HyperparameterError):
        return [_line(loc, None, problem) for problem in cause.problems]
    if isinstance(cause, SchemaError):
        # The dataset schema's own validation: one line per problem, under the field it names.
        return [_line(f"{loc}.{p.field}" if p.field else loc, p.value, p.message) for p in cause.problems]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field; remove it or check its spelling"
    elif error["type"] == "missing":
        msg = "required field is missing; add it"
    elif not error["type"].startswith("value_error"):
        hint = _FIELD_HINTS.get(loc)
        msg = f"{msg}; {hint}" if hint else f"{msg}; change it in the stage file"
    return [_line(loc, error.get("input"), msg)]


def _line(loc: str, value: object, msg: str) -> str:
    shown = "" if isinstance(value, dict) or value is None or value is MISSING else f" = {value!r}"
    return f"  - {loc}{shown}: {msg}"


def parse_stage(name: str, raw: Mapping[str, Any], *, source: str, destroy_data: bool = False) -> Stage:
    """Validate a stage mapping; raise ``ConfigError`` naming every bad field, its value and the fix."""
    if "destroy_data_on_delete" in raw:
        raise ConfigError(
            f"stage {name!r} ({source}): 'destroy_data_on_delete' cannot be set in a stage file; "
            'remove it and pass -c destroy_data=true at synth time (with data.removal_policy = "destroy")'
        )
    try:
        stage = Stage.model_validate({"name": name, **raw})
    except ValidationError as exc:
        lines = "\n".join(line for e in exc.errors(include_url=False) for line in _describe(e))
        raise ConfigError(f"stage {name!r} ({source}) is invalid:\n{lines}") from None
    if destroy_data:
        if stage.data.removal_policy != "destroy":
            raise ConfigError(
                f"stage {name!r} ({source}): the destroy-data flag was given but data.removal_policy is "
                f'{stage.data.removal_policy!r}; set data.removal_policy = "destroy" in the stage file '
                "or drop the flag"
            )
        stage = stage.model_copy(update={"destroy_data_on_delete": True})
    return stage


def _display(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def load_stage(name: str, *, stages_dir: Path = STAGES_DIR, destroy_data: bool = False) -> Stage:
    """Load ``<stages_dir>/<name>.toml``. Unknown stages and unreadable files raise ``ConfigError``."""
    path = stages_dir / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(available_stages(stages_dir)) or "none"
        raise ConfigError(
            f"unknown stage {name!r}: there is no {_display(path)}. Known stages: {known}. "
            f"Pick one with -c stage=NAME (or --stage NAME), or add {name}.toml"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(
            f"stage {name!r}: cannot read {_display(path)} ({exc.strerror}); make it readable"
        ) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"stage {name!r}: {_display(path)} is not UTF-8 text (byte {exc.object[exc.start]:#04x} on "
            f"line {line}); save the file as UTF-8"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"stage {name!r}: {_display(path)} is not valid TOML ({exc}); fix the syntax"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"stage {name!r}: {_display(path)} nests tables or arrays too deeply to read; fix the syntax"
        ) from None
    if "name" in raw:
        raise ConfigError(
            f"stage {name!r}: {_display(path)} sets 'name'; the file name is the stage name, remove it"
        )
    return parse_stage(name, raw, source=_display(path), destroy_data=destroy_data)
