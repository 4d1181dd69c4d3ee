"""The serving benchmark's HTTP floor: rookery's own ASGI app and uvicorn settings, with no model.

The handler answers one fixed line per input line, so a request costs only what the HTTP stack
(loopback, uvicorn, httptools, uvloop, the ASGI app) costs. Subtracting this from the endpoint's
latency shows how much of it is the model and how much is HTTP: the bound any handler on this
stack can reach. Started by ``bench/serving.py`` as ``uvicorn bench._floor_app:app``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "containers" / "program"))

from rookery_image.server import InferenceApp


class NoModel:
    """Stands in for ``codec.Predictor``: same signature, no decoding and no prediction."""

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, bytes]:
        return 200, b"text/csv", b"0.5,1\n" * max(1, body.count(b"\n"))


app = InferenceApp(loader=NoModel)  # type: ignore[arg-type]
