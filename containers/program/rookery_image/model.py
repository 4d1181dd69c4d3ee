"""The model folder (the contract's model directory, packed by SageMaker into model.tar.gz) and loading it.

Layout (``rookery_contracts.model_layout``): the booster, the fitted preprocessing and the metadata
(rounds, metrics, hyperparameters, default decision threshold). Evaluation and the endpoint load the
same bundle, so they score exactly what training produced.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rookery_contracts.model_layout import (
    METADATA_FILE,
    MODEL_ARCHIVE,
    MODEL_FILE,
    MODEL_LAYOUT,
    PREPROCESSOR_FILE,
)
from rookery_image.features import Preprocessor

METADATA_FORMAT = "rookery-model/1"
DEFAULT_THRESHOLD = 0.5


class ModelLoadError(Exception):
    """The model folder or archive is not a rookery model; the message names the file and the fix."""


def check_folder(folder: Path) -> tuple[Preprocessor, dict[str, Any]]:
    """Cheap structural check (no xgboost): the files exist and the JSON parts parse."""
    missing = [n for n in MODEL_LAYOUT if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise ModelLoadError(
            f"model folder {folder} lacks {missing} (it holds {present}); point the model at the "
            f"{MODEL_ARCHIVE} written by rookery's train entrypoint"
        )
    try:
        pre = Preprocessor.from_dict(json.loads((folder / PREPROCESSOR_FILE).read_text(encoding="utf-8")))
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"model folder {folder}: {exc}; retrain to rebuild the model") from None
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise ModelLoadError(
            f"{folder / METADATA_FILE} is not {METADATA_FORMAT!r} metadata; retrain the model"
        )
    return pre, metadata


def extract_archive(archive: Path, into: Path) -> Path:
    """Unpack the model archive safely (no absolute paths, links or escapes) and return the folder."""
    if not archive.is_file():
        raise ModelLoadError(f"no model archive at {archive}; map the training step's model.tar.gz to it")
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelLoadError(
            f"model archive {archive} cannot be unpacked ({exc}); it is corrupt or not a tar"
        ) from None
    return into


@dataclass
class ModelBundle:
    booster: Any  # xgboost.Booster; xgboost is imported on load, so checking a folder stays cheap
    preprocessor: Preprocessor
    metadata: dict[str, Any]
    threshold: float

    @classmethod
    def load(cls, folder: Path, *, threshold: float | None = None, nthread: int | None = None) -> ModelBundle:
        import xgboost as xgb  # noqa: PLC0415 (the serve parent checks folders without loading OpenMP)

        pre, metadata = check_folder(folder)
        booster = xgb.Booster()
        try:
            booster.load_model(folder / MODEL_FILE)
        except xgb.core.XGBoostError as exc:
            raise ModelLoadError(f"{folder / MODEL_FILE} is not an XGBoost model ({exc}); retrain") from None
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        n_features = booster.num_features()
        if n_features != len(pre.feature_names):
            raise ModelLoadError(
                f"the booster expects {n_features} features but preprocessor.json encodes "
                f"{len(pre.feature_names)}; the two come from different runs: retrain"
            )
        chosen = (
            threshold
            if threshold is not None
            else float(metadata.get("decision_threshold", DEFAULT_THRESHOLD))
        )
        return cls(booster=booster, preprocessor=pre, metadata=metadata, threshold=chosen)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Positive-class probabilities for an encoded float32 matrix."""
        # inplace_predict skips building a DMatrix: 25-35% faster per request than predict().
        return np.asarray(self.booster.inplace_predict(matrix, validate_features=False), dtype=np.float64)
