"""The files of a trained model: what train writes into the model folder and Evaluate and serve load.

SageMaker packs the model folder into :data:`MODEL_ARCHIVE`; the pipeline registers that archive and
the local engine packs it the same way.
"""

from __future__ import annotations

from typing import Final

MODEL_FILE: Final = "xgboost-model.ubj"  # the booster
PREPROCESSOR_FILE: Final = "preprocessor.json"  # the fitted preprocessing (preprocess writes it first)
METADATA_FILE: Final = "metadata.json"  # rounds, metrics, hyperparameters, fallback decision threshold
MODEL_LAYOUT: Final = (MODEL_FILE, PREPROCESSOR_FILE, METADATA_FILE)
MODEL_ARCHIVE: Final = "model.tar.gz"
