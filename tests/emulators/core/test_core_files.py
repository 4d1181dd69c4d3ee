"""Files under the local home are replaced whole, and folders start empty (``emulators/core/files.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.core.files import fresh_dir, replacing, write_whole


def test_a_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "record.json"

    assert write_whole(target, b"first") == target
    write_whole(target, b"second")

    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]


def test_a_write_that_fails_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_bytes(b"old")

    with pytest.raises(RuntimeError, match="half written"), replacing(target) as tmp:
        tmp.write_bytes(b"ne")
        raise RuntimeError("half written")

    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_fresh_folder_is_empty(tmp_path: Path) -> None:
    (tmp_path / "job" / "model").mkdir(parents=True)
    (tmp_path / "job" / "model" / "old.bin").write_bytes(b"x")

    assert fresh_dir(tmp_path / "job") == tmp_path / "job"
    assert list((tmp_path / "job").iterdir()) == []
