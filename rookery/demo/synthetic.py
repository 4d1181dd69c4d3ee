"""A synthetic tabular binary-classification dataset of any size: the benchmark's and the tests' data.

Learnable but noisy (test AUC well below 1), with missing values in every feature and numbers
sometimes sent as text, like real ingestion. ``SYNTHETIC_SCHEMA`` is its dataset schema;
``write_jsonl`` writes the records as Firehose would land them (one JSON object per line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

NUMERIC: Final = ("x0", "x1", "x2", "x3", "x4", "x5")
CATEGORICAL: Final = ("region", "channel")
SYNTHETIC_SCHEMA: Final[dict[str, Any]] = {
    "name": "synthetic",
    "target": "converted",
    "positive_class": "yes",
    "numeric": list(NUMERIC),
    "categorical": list(CATEGORICAL),
    "id_column": "record_id",
}
_REGIONS: Final = ("north", "south", "east", "west", "central")
_CHANNELS: Final = ("web", "store", "phone")


def write_jsonl(path: Path, rows: int, *, seed: int = 7, chunk: int = 100_000) -> Path:
    """``rows`` records as JSON lines at ``path`` (written in chunks: 1M rows stay small in memory)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, len(NUMERIC)))
            region = rng.integers(0, len(_REGIONS), n)
            channel = rng.choice(len(_CHANNELS), n, p=[0.6, 0.3, 0.1])
            logit = (
                0.9 * x[:, 0]
                - 0.7 * x[:, 1]
                + 0.6 * x[:, 2] * x[:, 3]
                + 0.8 * (region == 2)
                - 0.5 * (channel == 2)
                + rng.normal(scale=1.2, size=n)
            )
            label = logit > 0.4
            missing = rng.random((n, len(NUMERIC))) < 0.03
            lines = []
            for i in range(n):
                fields = [f'"record_id":"r{start + i:08d}"']
                for j, name in enumerate(NUMERIC):
                    if missing[i, j]:
                        fields.append(f'"{name}":null')
                    elif (start + i) % 97 == j:
                        fields.append(f'"{name}":"{x[i, j]:.5f}"')  # producers send numbers as text
                    else:
                        fields.append(f'"{name}":{x[i, j]:.5f}')
                fields.append(f'"region":"{_REGIONS[region[i]]}"')
                fields.append(f'"channel":"{_CHANNELS[channel[i]]}"' if i % 53 else '"channel":null')
                fields.append(f'"converted":"{"yes" if label[i] else "no"}"')
                lines.append("{" + ",".join(fields) + "}\n")
            out.write("".join(lines))
    return path
