"""The benchmark's baseline endpoint: Flask under gunicorn running rookery's own request handler.

The stack SageMaker's XGBoost container uses (there behind nginx with gevent workers), serving the
same :class:`rookery_image.codec.Predictor` as the real endpoint, so the comparison measures the
HTTP stack alone. Started by ``bench/serving.py`` as ``gunicorn bench._flask_app:app``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flask import Flask, Response, request

# This venv has scikit-learn (the image does not); xgboost would import it on load. Blocking it keeps
# the baseline's workers like the image's; it changes nothing per request.
sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "containers" / "program"))

from rookery_image.codec import Predictor  # noqa: E402
from rookery_image.model import ModelBundle  # noqa: E402

predictor = Predictor(ModelBundle.load(Path(os.environ["BENCH_MODEL_DIR"]), nthread=1))
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(b'{"status": "healthy"}', status=200, content_type="application/json")


@app.post("/invocations")
def invocations() -> Response:
    status, media, body = predictor.invoke(
        request.get_data(), request.content_type, request.headers.get("Accept")
    )
    return Response(body, status=status, content_type=media.decode())
