"""The local S3: ``s3://bucket/key`` is ``<home>/s3/bucket/key``; listing, staging and uploading."""
