"""Files under the local home are replaced whole, and folders start empty (``emulators/core/files.py``)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from emulators.core import files
from emulators.core.errors import UnwritableError
from emulators.core.files import check_writable, fresh_dir, replacing, unwritable, write_whole


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


def _disk_full_after_half(path: Path, data: bytes) -> None:
    """A disk that fills up halfway through the write."""
    with path.open("wb") as handle:
        handle.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "record.json"
    write_whole(target, b"old")
    monkeypatch.setattr(files, "_write", _disk_full_after_half)

    with pytest.raises(UnwritableError) as raised:
        write_whole(target, b"a new record")

    assert str(raised.value) == (
        f"cannot write {target}: no space left on the device; free space on that disk, or use a home on "
        "another one (--home or $ROOKERY_HOME), and run again"
    )
    assert raised.value.path == target
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_new_file_the_disk_has_no_room_for_is_not_left_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_write", _disk_full_after_half)
    with pytest.raises(UnwritableError):
        write_whole(tmp_path / "new.json", b"{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EDQUOT, errno.EPERM])
def test_every_refusal_of_the_disk_names_the_file_and_the_fix(code: int) -> None:
    refused = unwritable(OSError(code, os.strerror(code), "/home/x/.rookery/registry/g/1.json"))
    assert refused is not None
    assert str(refused).startswith("cannot write /home/x/.rookery/registry/g/1.json: ")
    assert "--home or $ROOKERY_HOME" in str(refused) and "\n" not in str(refused)
    assert unwritable(OSError(errno.ENOENT, "missing", "x")) is None
    assert unwritable(ValueError("not an OSError")) is None


def test_a_home_that_cannot_be_written_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(path: Path, data: bytes) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(files, "_write", read_only)
    with pytest.raises(UnwritableError, match="the file system is read-only; make it writable"):
        check_writable(tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []
