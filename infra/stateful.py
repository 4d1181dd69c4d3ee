"""Which CloudFormation resource types hold state that must survive ``cdk destroy`` (control D7).

Pure data: the removal-policy aspect applies it, the audit rule and the tests check it.
"""

from __future__ import annotations

from typing import Final

STATEFUL_RESOURCE_TYPES: Final = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::SQS::Queue",
        "AWS::SageMaker::ModelPackageGroup",
    }
)
