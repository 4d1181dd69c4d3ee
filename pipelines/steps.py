"""Step names and perimeter settings of the pipeline: an interface (the local engine, ``rookery
pipeline wait``, the tests), importable without the SageMaker SDK."""

from __future__ import annotations

from typing import Final

PROFILE: Final = "Profile"
FIT: Final = "Fit"
PREPROCESS: Final = "Preprocess"
TRAIN: Final = "Train"
TUNE: Final = "Tune"
EVALUATE: Final = "Evaluate"
BASELINE: Final = "Baseline"
GATE: Final = "Gate"
REGISTER: Final = "Register"
CREATE_MODEL: Final = "CreateModel"
BATCH_TRANSFORM: Final = "BatchTransform"
FAIL: Final = "Fail"

# Rookery's jobs read and write S3 only through SageMaker-managed channels: none needs a network.
NETWORK_ISOLATION: Final = True
INTER_CONTAINER_ENCRYPTION: Final = True
