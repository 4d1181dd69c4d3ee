"""The pipeline engine's own reading of a definition (tests/local runs it end to end)."""

from __future__ import annotations

from emulators.sagemaker.pipeline.engine import account_and_region


def test_the_engine_takes_account_and_region_from_the_private_image_then_an_arn() -> None:
    image = {
        "Steps": [
            {
                "Arguments": {
                    "AppSpecification": {"ImageUri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/p:1"}
                }
            }
        ]
    }
    role = {
        "RoleArn": "arn:aws:iam::444455556666:role/r",
        "Steps": [{"Arguments": {"KmsKeyId": "arn:aws:kms:us-east-2:444455556666:key/k"}}],
    }
    assert account_and_region({**role, **image}) == ("111122223333", "eu-west-1")
    assert account_and_region(role) == ("444455556666", "us-east-2")
    untagged = {"Steps": [{"Arguments": {"ImageUri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/p"}}]}
    assert account_and_region(untagged) == ("000000000000", "us-east-1")
