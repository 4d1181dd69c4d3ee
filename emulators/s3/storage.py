"""The local S3: listing a prefix, staging objects into a job's sandbox, uploading a folder back.

Prefix semantics follow S3 and SageMaker: ``S3Prefix`` takes every object whose key starts with the
prefix and keeps the rest of the key as the relative path (an object whose key *is* the prefix lands
under its own file name); ``S3Object`` takes exactly one object.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from emulators.core.errors import StepFailedError
from emulators.core.files import replacing, write_whole
from emulators.core.home import LocalHome, split_s3_uri


def list_prefix(home: LocalHome, uri: str) -> list[tuple[str, Path]]:
    """``(relative path, file)`` for every object under ``uri``, sorted by key."""
    bucket, key = split_s3_uri(uri)
    bucket_dir = home.s3_root / bucket
    if not bucket_dir.is_dir():
        return []
    head, _, tail = key.rpartition("/")
    base = bucket_dir.joinpath(*[p for p in head.split("/") if p])
    if not base.is_dir():
        return []
    found: list[tuple[str, Path]] = []
    for entry in sorted(base.iterdir()):
        if not entry.name.startswith(tail):
            continue
        candidates = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        for path in candidates:
            object_key = "/".join([*([head] if head else []), *path.relative_to(base).parts])
            rest = object_key[len(key) :].lstrip("/")
            found.append((rest or path.name, path))
    return sorted(found)


def no_objects(uri: str, what: str) -> StepFailedError:
    return StepFailedError(
        f"ClientError: No S3 objects found under S3 URL {uri!r} given in {what}. Make sure the data "
        "exists under that prefix of the local S3 folder (for the raw data: ingest it, or pass --data)"
    )


def stage(home: LocalHome, uri: str, data_type: str, dest: Path, what: str) -> int:
    """Copy the objects of ``uri`` into ``dest`` (a copy: a job must never change the stored object)."""
    if data_type == "S3Object":
        source = home.s3_path(uri)
        if not source.is_file():
            raise no_objects(uri, what)
        files = [(source.name, source)]
    else:
        files = list_prefix(home, uri)
        if not files:
            raise no_objects(uri, what)
    dest.mkdir(parents=True, exist_ok=True)
    for relative, source in files:
        target = dest.joinpath(*relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return len(files)


def upload(home: LocalHome, source: Path, uri: str) -> list[str]:
    """Upload every file under ``source`` to ``uri`` + relative path; returns the object URIs."""
    if not source.is_dir():
        return []
    prefix = uri.rstrip("/")
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        object_uri = prefix + "/" + "/".join(path.relative_to(source).parts)
        put_file(home, path, object_uri)
        written.append(object_uri)
    return written


def put_file(home: LocalHome, source: Path, uri: str) -> Path:
    """Store one object (write-then-rename, so a reader never sees half a file)."""
    target = home.s3_path(uri)
    with replacing(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


def put_bytes(home: LocalHome, data: bytes, uri: str) -> Path:
    return write_whole(home.s3_path(uri), data)
