"""The local S3's state: every bucket is a folder under ``<home>/s3``, every object a file in it.

``s3://bucket/key`` is ``<home>/s3/bucket/key``. Prefix semantics follow S3 and SageMaker: listing
a prefix takes every object whose key starts with it and keeps the rest of the key as the relative
path (an object whose key *is* the prefix lands under its own file name). Objects are written
whole (write-then-rename), so a reader never sees half an object.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emulators.core.files import replacing, write_whole
from emulators.core.home import LocalHome
from emulators.s3.exceptions import NoObjectsError, S3Error
from emulators.s3.responses import s3_uri, split_s3_uri


@dataclass(frozen=True)
class LocalS3:
    """The buckets under ``home``."""

    home: LocalHome

    @property
    def root(self) -> Path:
        return self.home.s3_root

    def path(self, uri: str) -> Path:
        """``s3://bucket/key`` -> ``<home>/s3/bucket/key``."""
        bucket, key = split_s3_uri(uri)
        return self.root.joinpath(bucket, *[p for p in key.split("/") if p])

    def uri(self, path: Path) -> str:
        """The inverse of :meth:`path` (``path`` must lie under ``<home>/s3/<bucket>``)."""
        resolved = Path(os.path.abspath(path))
        base = Path(os.path.abspath(self.root))
        if not resolved.is_relative_to(base) or resolved == base:
            raise S3Error(f"{path} is not inside the local S3 folder {base}")
        parts = PurePosixPath(*resolved.relative_to(base).parts).parts
        return s3_uri(parts[0], "/".join(parts[1:]))

    def list_prefix(self, uri: str) -> list[tuple[str, Path]]:
        """``(relative path, file)`` for every object under ``uri``, sorted by key."""
        bucket, key = split_s3_uri(uri)
        bucket_dir = self.root / bucket
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

    def download(self, uri: str, dest: Path, *, exact: bool = False) -> int:
        """Copy the objects under ``uri`` (only the object ``uri`` when ``exact``) into ``dest``.

        A copy: whoever reads ``dest`` must never change the stored object. Raises
        :class:`NoObjectsError` when there is nothing to copy.
        """
        if exact:
            source = self.path(uri)
            if not source.is_file():
                raise NoObjectsError(uri)
            files = [(source.name, source)]
        else:
            files = self.list_prefix(uri)
            if not files:
                raise NoObjectsError(uri)
        dest.mkdir(parents=True, exist_ok=True)
        for relative, source in files:
            target = dest.joinpath(*relative.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return len(files)

    def upload(self, source: Path, uri: str) -> list[str]:
        """Upload every file under ``source`` to ``uri`` + relative path; returns the object URIs."""
        if not source.is_dir():
            return []
        prefix = uri.rstrip("/")
        written = []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            object_uri = prefix + "/" + "/".join(path.relative_to(source).parts)
            self.put_file(path, object_uri)
            written.append(object_uri)
        return written

    def put_file(self, source: Path, uri: str) -> Path:
        """Store a copy of the file ``source`` as the object ``uri``."""
        target = self.path(uri)
        with replacing(target) as tmp:
            shutil.copyfile(source, tmp)
        return target

    def put_bytes(self, data: bytes, uri: str) -> Path:
        """Store ``data`` as the object ``uri``."""
        return write_whole(self.path(uri), data)

    def delete(self, uri: str) -> bool:
        """Delete the object ``uri``; whether there was one."""
        path = self.path(uri)
        if not path.is_file():
            return False
        path.unlink()
        return True
