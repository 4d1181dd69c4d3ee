"""The SageMaker container contract: the one module that knows ``/opt/ml`` and the job environment.

Training, processing and hosting jobs find their inputs, outputs and settings here. The root is
``/opt/ml`` unless ``SAGEMAKER_BASE_DIR`` names another folder (tests and the local engine run the
real entrypoints in a temporary sandbox). Every job runs through :func:`run_job`, which turns an
exception into the failure file SageMaker shows as the job's FailureReason, and tells user errors
(bad input or configuration: fix the job) from algorithm errors (a bug in this image: report it).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rookery_contracts import invocations
from rookery_contracts.env import (
    BASE_DIR_ENV,
    BIND_HOST_ENV,
    BIND_PORT_ENV,
    CHANNEL_DIR_ENV_PREFIX,
    DATASET_SCHEMA_ENV,
    DECISION_THRESHOLD_ENV,
    MODEL_DIR_ENV,
    OMP_WAIT_POLICY_ENV,
    OUTPUT_DATA_DIR_ENV,
    SERVER_TIMEOUT_ENV,
    SERVER_WORKERS_ENV,
    UNKNOWN_CATEGORY_ENV,
)
from rookery_contracts.schema import DatasetSchema, SchemaError, parse_schema

DEFAULT_BASE_DIR = "/opt/ml"

# SageMaker's real-time and batch-transform payload limit (the local front end enforces it too).
MAX_PAYLOAD_BYTES = invocations.MAX_PAYLOAD_BYTES

# Exit codes: SageMaker only needs non-zero; the local engine and humans can tell the kinds apart.
EXIT_USER_ERROR = 1
EXIT_ALGORITHM_ERROR = 2
EXIT_INTERRUPTED = 143  # 128 + SIGTERM, as a shell reports a process stopped by SIGTERM


class UserError(Exception):
    """The job's input or configuration is wrong; the message says what and how to fix it."""


class AlgorithmError(Exception):
    """Something failed inside this image's code or its libraries, not in the user's input."""


class Interrupted(Exception):  # noqa: N818 (not an error: SageMaker stops spot jobs with SIGTERM)
    """The job was asked to stop (SIGTERM) and has saved what it needs to resume."""


@dataclass(frozen=True)
class Paths:
    """Every location of the contract, under one base folder (``/opt/ml`` in SageMaker)."""

    base: Path

    @property
    def input_config(self) -> Path:
        return self.base / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.input_config / "hyperparameters.json"

    @property
    def inputdataconfig(self) -> Path:
        return self.input_config / "inputdataconfig.json"

    @property
    def resourceconfig(self) -> Path:
        return self.input_config / "resourceconfig.json"

    @property
    def processing_resourceconfig(self) -> Path:
        """Processing jobs find their hosts here (training jobs under ``input/config``)."""
        return self.base / "config" / "resourceconfig.json"

    @property
    def data(self) -> Path:
        return self.base / "input" / "data"

    @property
    def model(self) -> Path:
        return Path(os.environ.get(MODEL_DIR_ENV) or self.base / "model")

    @property
    def output(self) -> Path:
        return self.base / "output"

    @property
    def output_data(self) -> Path:
        return Path(os.environ.get(OUTPUT_DATA_DIR_ENV) or self.output / "data")

    @property
    def failure(self) -> Path:
        """Training and the local engine read the failure reason here."""
        return self.output / "failure"

    @property
    def message(self) -> Path:
        """Processing jobs report their ExitMessage from here."""
        return self.output / "message"

    @property
    def checkpoints(self) -> Path:
        """CheckpointConfig.LocalPath must keep its default for spot resume to find the files."""
        return self.base / "checkpoints"

    def channel(self, name: str) -> Path:
        override = os.environ.get(f"{CHANNEL_DIR_ENV_PREFIX}{name.upper()}")
        return Path(override) if override else self.data / name

    def processing_input(self, name: str) -> Path:
        return self.base / "processing" / "input" / name

    def processing_output(self, name: str) -> Path:
        return self.base / "processing" / "output" / name

    def located(self, sagemaker_path: str) -> Path:
        """A location SageMaker names absolutely (``/opt/ml/processing/resultdata``), under this base."""
        relative = sagemaker_path.removeprefix(f"{DEFAULT_BASE_DIR}/")
        if relative == sagemaker_path:
            raise ValueError(f"{sagemaker_path!r} is not under {DEFAULT_BASE_DIR}")
        return self.base / relative


def paths() -> Paths:
    return Paths(Path(os.environ.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} ({path}) is not valid JSON: {exc}; fix the file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} ({path}) is not UTF-8 text; rewrite it as UTF-8 JSON") from None


def read_hyperparameters(where: Paths | None = None) -> dict[str, str]:
    """hyperparameters.json as SageMaker writes it: every value a string. Missing file = none given."""
    p = where or paths()
    if not p.hyperparameters.is_file():
        return {}
    raw = _read_json(p.hyperparameters, "hyperparameters.json")
    if not isinstance(raw, dict):
        raise UserError("hyperparameters.json must hold one JSON object of name -> value")
    # The local engine may write numbers; SageMaker writes strings. Validation works on strings.
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    content_type: str | None
    input_mode: str


def read_input_data_config(where: Paths | None = None) -> dict[str, ChannelConfig] | None:
    """Declared channels, or None when inputdataconfig.json is absent (channels are then the folders)."""
    p = where or paths()
    if not p.inputdataconfig.is_file():
        return None
    raw = _read_json(p.inputdataconfig, "inputdataconfig.json")
    if not isinstance(raw, dict):
        raise UserError("inputdataconfig.json must hold one JSON object of channel name -> settings")
    channels = {}
    for name, given in raw.items():
        conf = given if isinstance(given, dict) else {}
        channels[name] = ChannelConfig(
            name=name,
            content_type=conf.get("ContentType"),
            input_mode=str(conf.get("TrainingInputMode", "File")),
        )
    return channels


@dataclass(frozen=True)
class ResourceConfig:
    current_host: str
    hosts: tuple[str, ...]


def read_resource_config(where: Paths | None = None, *, processing: bool = False) -> ResourceConfig:
    """This host and every host of the job; one host ``algo-1`` when the file is absent."""
    p = where or paths()
    path = p.processing_resourceconfig if processing else p.resourceconfig
    if not path.is_file():
        return ResourceConfig(current_host="algo-1", hosts=("algo-1",))
    raw = _read_json(path, "resourceconfig.json")
    if not isinstance(raw, dict) or "current_host" not in raw:
        raise UserError(
            "resourceconfig.json has no 'current_host'; it is written by SageMaker, do not edit it"
        )
    hosts = tuple(str(h) for h in raw.get("hosts") or [raw["current_host"]])
    return ResourceConfig(current_host=str(raw["current_host"]), hosts=hosts)


CSV_CONTENT_TYPES = ("text/csv",)


def channel_dir(name: str, *, required: bool, purpose: str, where: Paths | None = None) -> Path | None:
    """The folder of one training channel, checked against inputdataconfig.json.

    A required channel that is neither declared nor present is a user error that names the channel
    and what it is for; an optional one returns None.
    """
    p = where or paths()
    declared = read_input_data_config(p)
    folder = p.channel(name)
    if declared is not None and name in declared:
        conf = declared[name]
        if conf.input_mode != "File":
            raise UserError(
                f"channel {name!r} uses TrainingInputMode {conf.input_mode!r}; rookery reads files: "
                "set the input mode to 'File'"
            )
        base_type = (conf.content_type or "text/csv").split(";")[0].strip().lower()
        if name != "preprocessor" and base_type not in CSV_CONTENT_TYPES:
            raise UserError(
                f"channel {name!r} has ContentType {conf.content_type!r}; rookery trains on CSV "
                "(label first, no header): set ContentType to 'text/csv'"
            )
    elif declared is not None or not folder.is_dir():
        if not required:
            return None
        known = (
            sorted(declared)
            if declared is not None
            else sorted(d.name for d in p.data.glob("*") if d.is_dir())
        )
        raise UserError(
            f"missing channel {name!r} ({purpose}); the job has channels {known}. "
            f"Add a training input named {name!r}"
        )
    if not folder.is_dir():
        raise UserError(f"channel {name!r} is declared but its folder {folder} does not exist")
    return folder


def data_files(folder: Path) -> list[Path]:
    """Every regular data file under ``folder`` in a stable order (hidden files and folders skipped)."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            found.append(path)
    return found


def dataset_schema() -> DatasetSchema:
    """The dataset schema the job was given (``ROOKERY_DATASET_SCHEMA``), validated by the contract."""
    value = os.environ.get(DATASET_SCHEMA_ENV)
    if not value:
        raise UserError(
            f"environment variable {DATASET_SCHEMA_ENV} is not set; set it to the dataset schema as JSON, "
            'e.g. {"name": "penguins", "target": "sex", "positive_class": "female", '
            '"numeric": ["body_mass_g"], "categorical": ["island"], "id_column": null}'
        )
    try:
        return parse_schema(value)
    except SchemaError as exc:
        raise UserError(f"{DATASET_SCHEMA_ENV}: {exc}") from None


def write_failure(reason: str, where: Paths | None = None) -> None:
    """Write the reason where SageMaker (training: failure; processing: message) and the local engine look."""
    p = where or paths()
    try:
        p.output.mkdir(parents=True, exist_ok=True)
        p.failure.write_text(reason + "\n", encoding="utf-8")
        p.message.write_text(reason + "\n", encoding="utf-8")
    except OSError as exc:  # the reason still reaches the log below
        print(f"could not write the failure file {p.failure}: {exc}", file=sys.stderr)


def run_job(name: str, job: Callable[[], None]) -> int:
    """Run one job and return its exit code; on error, write the failure file first."""
    # OpenMP threads that spin while they wait made XGBoost 25x slower whenever another process
    # shared the cores (local runs, tests); sleeping costs little on a dedicated instance. Set
    # before any job imports xgboost; an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault(OMP_WAIT_POLICY_ENV, "PASSIVE")
    try:
        job()
    except UserError as exc:
        reason = f"UserError: {exc}"
        code = EXIT_USER_ERROR
    except Interrupted as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as exc:
        traceback.print_exc()
        detail = str(exc) or type(exc).__name__
        reason = (
            f"AlgorithmError: {name} failed inside rookery's image ({type(exc).__name__}: {detail}). "
            "The input passed validation, so this is a bug in the image or a library: "
            "report it with the job log"
        )
        code = EXIT_ALGORITHM_ERROR
    else:
        return 0
    write_failure(reason)
    print(reason, file=sys.stderr, flush=True)
    return code


# --- serving settings -------------------------------------------------------------------------


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(
            f"{name}={raw!r} is not a whole number; set it to an integer in {low}..{high}"
        ) from None
    if not low <= value <= high:
        raise UserError(f"{name}={value} is outside {low}..{high}; set it within that range")
    return value


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServingSettings:
    host: str
    port: int
    workers: int
    timeout_seconds: int
    decision_threshold: float | None
    unknown_category: str
    model_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingSettings:
        env = os.environ if env is None else env
        threshold_raw = env.get(DECISION_THRESHOLD_ENV, "").strip()
        threshold = None
        if threshold_raw:
            try:
                threshold = float(threshold_raw)
            except ValueError:
                threshold = float("nan")
            if not 0.0 <= threshold <= 1.0:
                raise UserError(
                    f"{DECISION_THRESHOLD_ENV}={threshold_raw!r} is not a probability between 0 and 1; "
                    "set it to the threshold from evaluation.json (decision_threshold.value) or unset it"
                )
        unknown = env.get(UNKNOWN_CATEGORY_ENV, "error").strip().lower() or "error"
        if unknown not in ("error", "ignore"):
            raise UserError(
                f"{UNKNOWN_CATEGORY_ENV}={unknown!r} is not a policy; use 'error' (reject records with an "
                "unseen category, the default) or 'ignore' (encode them as no known level)"
            )
        return cls(
            host=env.get(BIND_HOST_ENV, "").strip() or "0.0.0.0",
            port=_env_int(env, BIND_PORT_ENV, 8080, 1, 65535),
            workers=_env_int(env, SERVER_WORKERS_ENV, usable_cpus(), 1, 64),
            timeout_seconds=_env_int(env, SERVER_TIMEOUT_ENV, 60, 1, 3600),
            decision_threshold=threshold,
            unknown_category=unknown,
            model_dir=Path(
                env.get(MODEL_DIR_ENV) or Path(env.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR) / "model"
            ),
        )
