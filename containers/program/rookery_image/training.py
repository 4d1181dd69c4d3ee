"""Train job: XGBoost on the ``train``/``validation`` CSV channels, spot-safe, with parseable metrics.

Every round prints ``[<round>] train-<metric>:<value> validation-<metric>:<value>`` as
``rookery_contracts.metrics`` formats it for SageMaker's metric definitions; the last line,
``[model] ...``, is the saved model's score. Checkpoints go to the contract's checkpoint folder
every ``checkpoint_frequency`` rounds and on SIGTERM; a restarted job resumes from the newest one
and trains the very model an uninterrupted job would (row and column sampling are a function of
the seed and the round: :mod:`rookery_image.sampling`), so it stops at the same round too.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from rookery_contracts.metrics import log_item, log_name
from rookery_contracts.model_layout import METADATA_FILE, MODEL_FILE, PREPROCESSOR_FILE
from rookery_image import checkpoints, cluster, contract, sampling
from rookery_image import hyperparameters as hp_mod
from rookery_image.contract import Interrupted, UserError
from rookery_image.features import Preprocessor
from rookery_image.model import METADATA_FORMAT

_EVAL_ITEM = re.compile(r"([A-Za-z0-9_]+)-([A-Za-z0-9_@.]+):(-?[0-9.eE+-]+|nan|-?inf)")


@dataclass
class Split:
    features: np.ndarray
    labels: np.ndarray
    files: list[Path]


def read_split(folder: Path, channel: str, n_features: int, *, both_classes: bool = True) -> Split:
    """Every CSV file of a channel (label first, no header) as float32 features and 0/1 labels.

    ``both_classes=False`` leaves the check that the train channel holds both classes to the caller
    (a host's shard may hold one class when the job as a whole holds both).
    """
    files = contract.data_files(folder)
    tables = []
    for path in files:
        shown = f"channel {channel!r} file {path.name}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # an empty file is reported below, with context
                table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, encoding="utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{shown} is not numeric CSV ({exc}); the splits are numbers only, label first, no header: "
                "rerun the preprocess job"
            ) from None
        if table.size == 0:
            continue
        if table.shape[1] != n_features + 1:
            raise UserError(
                f"{shown} has {table.shape[1] - 1} feature columns after the label but preprocessor.json "
                f"encodes {n_features}; use the splits and the preprocessor of the same preprocess run"
            )
        wrong = np.flatnonzero((table[:, 0] != 0) & (table[:, 0] != 1))
        if len(wrong):
            raise UserError(
                f"{shown} line {wrong[0] + 1}: label {table[wrong[0], 0]:g} is not 0 or 1; "
                "the first column is the label (1 = positive class)"
            )
        tables.append(table)
    if not tables:
        raise UserError(
            f"channel {channel!r} holds no rows ({len(files)} file(s): {[p.name for p in files]}); "
            "point it at the non-empty output of the preprocess job"
        )
    table = np.concatenate(tables)
    labels = table[:, 0].astype(np.int8)
    if both_classes and channel == "train" and len(np.unique(labels)) < 2:
        raise UserError(f"channel {channel!r} has only class {int(labels[0])}; training needs both classes")
    return Split(features=np.ascontiguousarray(table[:, 1:]), labels=labels, files=files)


def read_preprocessor(folder: Path) -> tuple[Preprocessor, Path]:
    found = [p for p in contract.data_files(folder) if p.name == PREPROCESSOR_FILE]
    if len(found) != 1:
        raise UserError(
            f"channel 'preprocessor' must hold exactly one {PREPROCESSOR_FILE} (found {len(found)}); "
            "map the preprocess job's 'preprocessor' output to it"
        )
    try:
        return Preprocessor.from_dict(json.loads(found[0].read_text(encoding="utf-8"))), found[0]
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(
            f"{found[0]} is not a rookery preprocessor ({exc}); rerun the preprocess job"
        ) from None


def xgboost_feature_names(names: tuple[str, ...]) -> list[str] | None:
    """Names XGBoost accepts ('[', ']' and '<' are reserved); None if cleaning them would collide."""
    cleaned = [re.sub(r"[\[\]<,]", "_", n) for n in names]
    return cleaned if len(set(cleaned)) == len(cleaned) else None


def parse_evaluation(message: str) -> dict[str, float]:
    """``"[3]\\ttrain-auc:0.9\\tvalidation-auc:0.8"`` -> ``{"train-auc": 0.9, "validation-auc": 0.8}``."""
    return {log_name(m[0], m[1]): float(m[2]) for m in _EVAL_ITEM.findall(message)}


def metric_line(label: str, scores: dict[str, float]) -> str:
    return f"[{label}] " + " ".join(log_item(name, value) for name, value in scores.items())


class StopFlag:
    """Set by SIGTERM (spot interruption, StopTrainingJob): checkpoint and stop after the current round."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Only set the flag: printing here could re-enter a print the loop is in the middle of.
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def train(where: contract.Paths, stop: StopFlag) -> dict[str, Any]:
    """Train and write the model (the first host); the model's metadata, or {} on the other hosts."""
    import xgboost as xgb  # noqa: PLC0415 (after the SIGTERM handler and argument checks: fail fast)

    started = time.perf_counter()
    with cluster.joined(contract.read_resource_config(where)) as hosts:
        return _train(xgb, where, stop, hosts, started)


@dataclass
class _Inputs:
    params: hp_mod.Hyperparameters
    pre: Preprocessor
    pre_file: Path
    train: Split
    validation: Split | None


def _read_inputs(where: contract.Paths, hosts: cluster.Cluster) -> _Inputs:
    params = hp_mod.parse(contract.read_hyperparameters(where))
    pre_dir = contract.channel_dir(
        "preprocessor", required=True, purpose="the preprocess job's preprocessor.json", where=where
    )
    train_dir = contract.channel_dir(
        "train", required=True, purpose="training rows, CSV with the label first", where=where
    )
    val_dir = contract.channel_dir("validation", required=False, purpose="validation rows", where=where)
    assert pre_dir is not None and train_dir is not None
    if params.early_stopping_rounds and val_dir is None:
        raise UserError(
            "hyperparameter 'early_stopping_rounds' needs a 'validation' channel to watch; "
            "add the validation split as a channel or remove early_stopping_rounds"
        )
    pre, pre_file = read_preprocessor(pre_dir)
    n_features = len(pre.feature_names)
    train_split = read_split(train_dir, "train", n_features, both_classes=not hosts.distributed)
    val_split = read_split(val_dir, "validation", n_features) if val_dir else None
    return _Inputs(params, pre, pre_file, train_split, val_split)


def _train(
    xgb: Any, where: contract.Paths, stop: StopFlag, hosts: cluster.Cluster, started: float
) -> dict[str, Any]:
    try:
        inputs = _read_inputs(where, hosts)
    except UserError as exc:
        hosts.agree(exc)
        raise
    hosts.agree(None)
    params, pre, pre_file = inputs.params, inputs.pre, inputs.pre_file
    train_split, val_split = inputs.train, inputs.validation
    classes = hosts.total(np.bincount(train_split.labels, minlength=2).astype(np.int64))
    if hosts.distributed and classes.min() == 0:
        raise UserError(
            f"channel 'train' has only class {int(classes.argmax())} on all {hosts.size} hosts; "
            "training needs both classes"
        )

    names = xgboost_feature_names(pre.feature_names)
    nthread = int(params.booster_params.get("nthread", contract.usable_cpus()))
    dtrain = xgb.DMatrix(train_split.features, label=train_split.labels, feature_names=names, nthread=nthread)
    evals = [(dtrain, "train")]
    if val_split is not None:
        dval = xgb.DMatrix(val_split.features, label=val_split.labels, feature_names=names, nthread=nthread)
        evals.append((dval, "validation"))
    booster_params = {
        **params.booster_params,
        "eval_metric": list(params.eval_metrics),
        "nthread": nthread,
        **sampling.BOOSTER_PARAMS,
    }

    files = [pre_file, *train_split.files, *(val_split.files if val_split else [])]
    # Every host's data goes into the fingerprint, so the hosts agree on which checkpoints are theirs.
    local = checkpoints.fingerprint(params.fingerprint(), files)
    shared = hashlib.sha256("".join(hosts.gather(local)).encode()).hexdigest() if hosts.distributed else local
    store = checkpoints.CheckpointStore(where.checkpoints, shared)
    # The first host picks the checkpoint and sends it to the others: all resume from the same round.
    raw, resumed_from = hosts.from_first(_resume(xgb, store, params.num_round) if hosts.first else None)
    cache = [d for d, _ in evals]
    booster = (
        xgb.Booster(booster_params, cache, model_file=raw) if raw else xgb.Booster(booster_params, cache)
    )
    watch = log_name("validation", params.stopping_metric)
    maximize = params.stopping_metric in hp_mod.MAXIMIZED_METRICS
    stopped_early = False
    written = 0
    patience = params.early_stopping_rounds
    for i in range(booster.num_boosted_rounds(), params.num_round):
        # Checked before each round from the booster's own attributes, so a resumed job stops
        # exactly where an uninterrupted one would.
        best_at = booster.attr("best_iteration")
        if patience and best_at is not None and (i - 1) - int(best_at) >= patience:
            stopped_early = True
            print(
                f"train: early stopping after round {i}: {watch} has not improved for {patience} rounds "
                f"(best at round {best_at})",
                flush=True,
            )
            break
        sampling.fresh_round(booster)
        booster.update(dtrain, iteration=i)
        scores = parse_evaluation(booster.eval_set(evals, iteration=i))
        print(metric_line(str(i), scores), flush=True)
        if patience and watch in scores:
            best = booster.attr("best_score")
            score = scores[watch]
            if best is None or (score > float(best) if maximize else score < float(best)):
                booster.set_attr(best_score=repr(score), best_iteration=str(i))
        done = i + 1
        stopping = hosts.any(stop.requested)  # SageMaker stops every host: they stop after the same round
        if hosts.first and (stopping or done % params.checkpoint_frequency == 0):
            store.save(booster.save_raw(raw_format="ubj"), done)
            written += 1
        if stopping:
            print(f"train: SIGTERM received; checkpoint saved after round {done}", flush=True)
            raise Interrupted(
                f"stopped by SIGTERM after round {done} of {params.num_round}; checkpoint saved in "
                f"{where.checkpoints}: the restarted job resumes from round {done}"
            )

    final = booster
    best_iteration = booster.attr("best_iteration")
    if stopped_early and best_iteration is not None:
        final = booster[: int(best_iteration) + 1]
    final_scores = parse_evaluation(final.eval_set(evals, iteration=final.num_boosted_rounds() - 1))
    print(metric_line("model", final_scores), flush=True)
    train_rows = int(classes.sum())
    if not hosts.first:
        print(f"train: host {hosts.current_host} done; the first host {hosts.hosts[0]} writes the model")
        return {}

    model_dir = where.model
    model_dir.mkdir(parents=True, exist_ok=True)
    final.save_model(model_dir / MODEL_FILE)
    shutil.copyfile(pre_file, model_dir / PREPROCESSOR_FILE)
    seconds = time.perf_counter() - started
    metadata = {
        "format": METADATA_FORMAT,
        "framework": "xgboost",
        "xgboost_version": xgb.__version__,
        "dataset": pre.dataset,
        "target": pre.target,
        "positive_class": pre.positive_class,
        "negative_class": pre.negative_class,
        "rounds": final.num_boosted_rounds(),
        "num_round": params.num_round,
        "stopped_early": stopped_early,
        "best_iteration": None if best_iteration is None else int(best_iteration),
        "resumed_from_round": resumed_from,
        "checkpoints_written": written,
        "metrics": final_scores,
        "hyperparameters": params.given,
        "feature_names": list(pre.feature_names),
        "train_rows": train_rows,
        "validation_rows": len(val_split.labels) if val_split else 0,
        "hosts": hosts.size,
        "training_seconds": round(seconds, 3),
        "decision_threshold": 0.5,
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return metadata


def _resume(
    xgb: Any, store: checkpoints.CheckpointStore, num_round: int
) -> tuple[bytearray | None, int | None]:
    """The newest usable checkpoint's bytes and rounds (None, None when there is none)."""
    usable, skipped = store.candidates()
    for note in skipped:
        print(f"train: ignoring checkpoint {note}", flush=True)
    for ckpt in usable:
        raw = bytearray(ckpt.model.read_bytes())
        try:
            rounds = xgb.Booster(model_file=raw).num_boosted_rounds()
        except xgb.core.XGBoostError as exc:
            print(f"train: ignoring unreadable checkpoint {ckpt.model.name}: {exc}", flush=True)
            continue
        if rounds > num_round:
            print(
                f"train: ignoring checkpoint {ckpt.model.name}: {rounds} rounds exceed num_round={num_round}"
            )
            continue
        print(
            f"train: resuming from checkpoint {ckpt.model.name} at round {rounds} of {num_round}", flush=True
        )
        return raw, rounds
    print(f"train: no checkpoint to resume from; starting at round 0 of {num_round}", flush=True)
    return None, None


def main() -> int:
    stop = StopFlag()
    stop.install()

    def job() -> None:
        metadata = train(contract.paths(), stop)
        if not metadata:  # a host other than the first: it writes no model
            return
        print(
            f"train: saved a {metadata['rounds']}-round model to the model folder "
            f"({metadata['train_rows']} training rows, {metadata['training_seconds']} s)",
            flush=True,
        )

    return contract.run_job("train", job)
