"""The serve process's start: a damaged model archive and a crashed server are named, with the fix,
and leave no partly extracted model (``emulators/core/serving.py``)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.core.serving import ServeError, ServeProcess, extract_model


def _archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        payload = bytes(range(256)) * 64
        info = tarfile.TarInfo("xgboost-model.ubj")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_a_truncated_model_archive_is_named_with_the_fix_and_nothing_is_left_extracted(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(_archive()[:-40])
    target = tmp_path / "sandbox" / "model"
    with pytest.raises(ServeError) as raised:
        extract_model(archive, target)
    assert str(raised.value).startswith(f"the model archive {archive} is damaged (")
    assert str(raised.value).endswith("run the pipeline again to train and register a new model")
    assert not target.exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.one_of(
        st.binary(max_size=2000),
        st.integers(1, len(_archive()) - 1).map(lambda cut: _archive()[:cut]),
    )
)
def test_any_bytes_as_a_model_archive_extract_or_give_a_serve_error(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(content)
    target = tmp_path / "model"
    try:
        extract_model(archive, target)
    except ServeError as exc:
        assert str(archive) in str(exc)
        assert not target.exists()


def test_a_server_that_crashes_is_named_by_its_signal(tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    log.write_text("serve: 1 worker(s) on 127.0.0.1:1\n")
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    process = subprocess.Popen([sys.executable, "-c", crash])
    server = ServeProcess(process, "http://127.0.0.1:1", tmp_path, log)
    try:
        with pytest.raises(ServeError) as raised:
            server.wait_ready(timeout=30)
    finally:
        server.stop()
    assert str(raised.value).startswith(
        f"the serve entrypoint was killed by SIGSEGV (crashed; is a file in {tmp_path / 'model'} damaged?): "
    )
