"""A model that cannot be served is one line from `rookery local serve`: the archive or the container's
own first error, the fix, exit 2, no traceback (``emulators/sagemaker_runtime/fleets.py``)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable

import pytest
from runtime_testing import MODEL_URI, TrainedModel, registered
from typer.testing import CliRunner

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from rookery.cli.main import app


def _repacked(model: TrainedModel, change: Callable[[str, bytes], bytes]) -> bytes:
    """The trained model's archive with each member's bytes passed through ``change(name, data)``."""
    out = io.BytesIO()
    with tarfile.open(model.archive) as source, tarfile.open(fileobj=out, mode="w:gz") as target:
        for member in source.getmembers():
            extracted = source.extractfile(member)
            assert extracted is not None
            data = change(member.name, extracted.read())
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _one_feature_less(name: str, data: bytes) -> bytes:
    if name != "preprocessor.json":
        return data
    preprocessor = json.loads(data)
    preprocessor["numeric"] = preprocessor["numeric"][:-1]
    return json.dumps(preprocessor).encode()


def _booster_overwritten(name: str, data: bytes) -> bytes:
    return data[:200] + b"\0" * 60 + data[260:] if name == "xgboost-model.ubj" else data


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda model: model.archive.read_bytes()[:-64],
            r"the model archive \S+model\.tar\.gz is damaged \(.+; truncated or not a \.tar\.gz\): "
            r"run the pipeline again to train and register a new model$",
        ),
        (
            lambda model: _repacked(model, _one_feature_less),
            r"exited with code 3: cannot load the model: the booster expects \d+ features but "
            r"preprocessor\.json encodes \d+; the two come from different runs: retrain "
            r"\(see \S+model\.log\)$",
        ),
        (
            lambda model: _repacked(model, _booster_overwritten),
            r"exited with code 3: cannot load the model: \S+xgboost-model\.ubj is not an XGBoost model",
        ),
    ],
    ids=["truncated archive", "feature mismatch", "corrupt booster"],
)
def test_a_model_that_cannot_be_served_is_one_line_with_exit_2(
    home: LocalHome, model: TrainedModel, damage: Callable[[TrainedModel], bytes], expected: str
) -> None:
    package = registered(home, model)
    LocalS3(home).path(MODEL_URI).write_bytes(damage(model))

    result = CliRunner().invoke(
        app, ["local", "serve", package.ref, "--port", "0", "--home", str(home.root)], catch_exceptions=False
    )

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"error: endpoint 'rookery-dev-local' could not start: model package {package.ref} "
    )
    assert re.search(expected, line), line
    if "damaged" in line:
        assert not list(home.endpoints_dir.rglob("model/*"))  # nothing half extracted is left
