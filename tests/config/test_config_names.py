"""Names derived in stage.names: each resource name from the stage, and the private-ECR image pattern
every layer checks images with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stage import load_stage
from stage.names import (
    PRIVATE_ECR_IMAGE,
    glue_security_configuration_name,
    key_alias,
    local_endpoint_name,
    model_package_group_name,
    pipeline_name,
    placeholder_bucket_name,
    placeholder_image_repository,
    placeholder_role_name,
)


def test_every_name_derives_from_prefix_and_stage() -> None:
    prod = load_stage("prod")
    assert (pipeline_name(prod), model_package_group_name(prod)) == (
        "rookery-prod-pipeline",
        "rookery-prod-models",
    )
    assert glue_security_configuration_name(prod) == "rookery-prod-catalog"
    assert key_alias(prod, "data") == "alias/rookery-prod/data"
    assert placeholder_bucket_name(prod, "raw") == "rookery-prod-raw"
    assert placeholder_role_name(prod) == "rookery-prod-sagemaker-execution"
    assert placeholder_image_repository(prod) == "rookery-prod-image"
    assert local_endpoint_name(prod, "demo") == "rookery-prod-demo"
    with pytest.raises(ValueError, match="unknown bucket purpose 'access-logs'"):
        placeholder_bucket_name(prod, "access-logs")


DIGEST = "sha256:" + "0123456789abcdef" * 4

_component = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*", fullmatch=True).filter(lambda c: len(c) <= 30)
repositories = st.lists(_component, min_size=1, max_size=3).map("/".join)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
accounts = st.from_regex(r"[0-9]{12}", fullmatch=True)
regions = st.sampled_from(
    ["eu-west-1", "us-east-1", "us-gov-west-1", "cn-north-1", "ap-southeast-5", "us-isob-east-1"]
)


@given(account=accounts, region=regions, repository=repositories, tag=tags, china=st.booleans())
def test_property_a_tagged_private_image_parses_into_its_parts(
    account: str, region: str, repository: str, tag: str, china: bool
) -> None:
    host = f"{account}.dkr.ecr.{region}.amazonaws.com{'.cn' if china else ''}"
    match = PRIVATE_ECR_IMAGE.match(f"{host}/{repository}:{tag}")
    assert match is not None
    assert match.groupdict() == {
        "account": account,
        "region": region,
        "repository": repository,
        "tag": tag,
        "digest": None,
    }
    pinned = PRIVATE_ECR_IMAGE.match(f"{host}/{repository}@{DIGEST}")
    assert pinned is not None and (pinned["repository"], pinned["tag"], pinned["digest"]) == (
        repository,
        None,
        DIGEST,
    )


@given(repository=repositories, tag=tags)
def test_property_what_is_not_exactly_a_private_image_does_not_match(repository: str, tag: str) -> None:
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    for uri in (
        f"{host}/{repository}",  # no tag or digest
        f"{host}/{repository}:{tag}\n",  # a trailing newline
        f"{host}/{repository.upper()}X:{tag}",  # ECR repositories are lower case
        f"{host}/{repository}@sha256:{'0' * 63}",  # a short digest
        f"12345678901.dkr.ecr.eu-west-1.amazonaws.com/{repository}:{tag}",  # an 11-digit account
        f"public.ecr.aws/{repository}:{tag}",
        f"docker.io/{repository}:{tag}",
        f"x{host}/{repository}:{tag}",
    ):
        assert PRIVATE_ECR_IMAGE.match(uri) is None, uri


@pytest.mark.parametrize(
    "uri",
    [
        "000000000000.dkr.ecr.eu-west-1.amazonaws.com/rookery-dev-image:latest",  # the placeholder image
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",  # built-in XGBoost
        "000000000000.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets:abc",  # a CDK asset
    ],
)
def test_the_images_rookery_names_are_private_ecr_images(uri: str) -> None:
    assert PRIVATE_ECR_IMAGE.match(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a//b:1",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/-a:1",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a:-1",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a:1@" + DIGEST,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example/a:1",
    ],
)
def test_malformed_repositories_tags_and_hosts_are_refused(uri: str) -> None:
    assert PRIVATE_ECR_IMAGE.match(uri) is None
