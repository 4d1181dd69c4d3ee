"""The local S3: ``s3://bucket/key`` is ``<home>/s3/bucket/key``.

``models`` (the buckets as folders: listing, downloading, uploading), ``responses`` (S3 URIs),
``exceptions``.
"""

from __future__ import annotations

from emulators.s3.exceptions import NoObjectsError, S3Error
from emulators.s3.models import LocalS3
from emulators.s3.responses import split_s3_uri

__all__ = ["LocalS3", "NoObjectsError", "S3Error", "split_s3_uri"]
