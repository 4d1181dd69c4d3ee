"""The local S3's buckets: URIs mapped under the home and back, prefixes listed as S3 lists them,
objects downloaded and deleted (``emulators/s3/models.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.core.errors import LocalEngineError
from emulators.core.home import LocalHome
from emulators.s3 import LocalS3


def test_s3_paths_map_under_the_home_and_back(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    path = s3.path("s3://bucket/a/b.txt")
    assert path == tmp_path / "s3" / "bucket" / "a" / "b.txt"
    assert s3.uri(path) == "s3://bucket/a/b.txt"
    for bad in ("https://bucket/a", "s3:///key", "s3://bucket/../x", "file:///etc/passwd"):
        with pytest.raises(LocalEngineError):
            s3.path(bad)
    with pytest.raises(LocalEngineError, match="not inside the local S3 folder"):
        s3.uri(tmp_path / "elsewhere")


def test_a_prefix_keeps_relative_paths_and_an_exact_key_its_file_name(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    for key in (
        "run/Preprocess/train/train.csv",
        "run/Preprocess/train/part/2.csv",
        "run/Preprocess/test/test.csv",
    ):
        path = s3.path(f"s3://b/{key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key)
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/train")] == ["part/2.csv", "train.csv"]
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/train/")] == ["part/2.csv", "train.csv"]
    assert [r for r, _ in s3.list_prefix("s3://b/run/Preprocess/test/test.csv")] == ["test.csv"]
    assert s3.list_prefix("s3://b/run/nothing") == [] and s3.list_prefix("s3://other/x") == []
    s3.download("s3://b/run/Preprocess/train", tmp_path / "job")
    assert (tmp_path / "job" / "part" / "2.csv").read_text() == "run/Preprocess/train/part/2.csv"


def test_deleting_an_object_says_whether_there_was_one(tmp_path: Path) -> None:
    s3 = LocalS3(LocalHome(tmp_path))
    s3.put_bytes(b"x", "s3://b/k/one")
    assert s3.delete("s3://b/k/one") and not s3.path("s3://b/k/one").exists()
    assert not s3.delete("s3://b/k/one") and not s3.delete("s3://b/k")
