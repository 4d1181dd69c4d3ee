"""How S3 locations are written in requests: ``s3://bucket/key``, parsed and put back together."""

from __future__ import annotations

from emulators.s3.exceptions import S3Error


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``("bucket", "key")``; refuses other schemes and ``..`` segments."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise S3Error(f"{uri!r} is not an s3:// URI; write it as s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or "/" in bucket or bucket in (".", ".."):
        raise S3Error(f"{uri!r} has no bucket name; write it as s3://bucket/key")
    if any(part in (".", "..") for part in key.split("/")):
        raise S3Error(f"{uri!r} has a '.' or '..' segment; S3 keys here must not climb folders")
    return bucket, key


def s3_uri(bucket: str, key: str) -> str:
    """The inverse of :func:`split_s3_uri`."""
    return f"s3://{bucket}/{key}"
