"""Settings, resources, placeholders and parameter overrides: pure, no SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pipeline_testing import stage_with

from pipelines import PipelineResources, PipelineSettings, SettingsError, placeholder_locations
from pipelines.parameters import (
    ParameterError,
    operating_point_problem,
    parse_overrides,
    pipeline_parameters,
)
from pipelines.placeholders import PlaceholderError, split_on_placeholders
from pipelines.settings import operating_point_arg
from stage import ConfigError, OperatingPoint, Stage, load_stage
from stage.names import model_package_group_name, pipeline_name


@pytest.fixture(scope="module")
def dev() -> Stage:
    return load_stage("dev")


# -- resources --------------------------------------------------------------------------
def test_placeholders_are_deterministic_and_named_after_the_stage(dev: Stage) -> None:
    resources = PipelineResources.placeholders(dev)
    assert resources == PipelineResources.placeholders(dev)
    assert resources.artifacts_bucket == "rookery-dev-artifacts"
    assert resources.raw_bucket == "rookery-dev-raw"
    assert resources.image_uri == "000000000000.dkr.ecr.eu-west-1.amazonaws.com/rookery-dev-image:latest"
    assert resources.pipeline_name == pipeline_name(dev) == "rookery-dev-pipeline"
    assert resources.model_package_group_name == model_package_group_name(dev) == "rookery-dev-models"
    assert len(resources.subnet_ids) == dev.max_azs


def test_placeholders_use_a_pinned_account() -> None:
    prod = load_stage("prod")
    resources = PipelineResources.placeholders(prod)
    assert resources.role_arn.startswith("arn:aws:iam::123456789012:role/")
    assert resources.image_uri.startswith("123456789012.dkr.ecr.eu-west-1.amazonaws.com/")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("role_arn", "rookery-role", "must be an IAM role ARN"),
        ("volume_kms_key_arn", "alias/aws/s3", "must be a KMS key ARN"),
        ("artifacts_bucket", "s3://bucket", "must be an S3 bucket name"),
        ("image_uri", "python:3.11", "private ECR repository with a tag or digest"),
        ("image_uri", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rookery", "tag or digest"),
        ("subnet_ids", (), "at least 1 item"),
        ("subnet_ids", ("vpc-1",), "are not subnet ids"),
        ("security_group_ids", ("subnet-1",), "are not security group ids"),
        ("pipeline_name", "rookery_dev", "letters, digits and single hyphens"),
        ("model_package_group_name", "x" * 64, "at most 63"),
    ],
)
def test_bad_resources_are_refused_with_the_fix(dev: Stage, field: str, value: Any, message: str) -> None:
    data = PipelineResources.placeholders(dev).model_dump()
    data[field] = value
    with pytest.raises(ValueError, match=message) as info:
        PipelineResources.model_validate(data)
    assert field in str(info.value)


# -- settings --------------------------------------------------------------------------
def test_from_stage_takes_the_stage_defaults_and_overrides(dev: Stage) -> None:
    resources = PipelineResources.placeholders(dev)
    settings = PipelineSettings.from_stage(dev, resources)
    assert (settings.tune, settings.spot) == (dev.ml.tuning.enabled, dev.ml.training.use_spot)
    assert settings.default_input_uri == "s3://rookery-dev-raw/penguins/"
    flipped = PipelineSettings.from_stage(dev, resources, tune=not settings.tune, spot=not settings.spot)
    assert (flipped.tune, flipped.spot) == (not settings.tune, not settings.spot)


def test_spot_needs_a_wait_at_least_the_runtime() -> None:
    stage = stage_with(use_spot=False, max_runtime_seconds=7200, max_wait_seconds=3600)
    resources = PipelineResources.placeholders(stage)
    PipelineSettings.from_stage(stage, resources)  # fine without spot
    with pytest.raises(SettingsError, match=r"max_wait_seconds \(3600\) >= max_runtime_seconds \(7200\)"):
        PipelineSettings.from_stage(stage, resources, spot=True)


def test_builtin_image_reason_is_config() -> None:
    with pytest.raises(ConfigError, match='image_exception_reason is set but image = "project"'):
        stage_with(image_exception_reason="a reason that would be long enough")
    with pytest.raises(ConfigError, match="at least 20 characters"):
        stage_with(image="builtin-xgboost", image_exception_reason="too short")


def test_operating_point_argument() -> None:
    assert operating_point_arg(OperatingPoint(kind="min_sensitivity", value=0.85)) == "min_sensitivity:0.85"
    assert operating_point_arg(OperatingPoint(kind="best_f1")) == "best_f1"
    assert operating_point_problem("min_specificity:0.99") is None
    assert operating_point_problem("best_f1") is None
    assert "unknown kind" in str(operating_point_problem("max_recall:0.9"))
    assert "needs a bar strictly between 0 and 1" in str(operating_point_problem("min_sensitivity:1.5"))
    assert "takes no value" in str(operating_point_problem("best_f1:0.5"))


# -- placeholders in a definition --------------------------------------------------------------------------
def _tiny_definition(resources: PipelineResources) -> dict[str, Any]:
    return {
        "Parameters": [{"Name": "InputDataUri", "DefaultValue": f"s3://{resources.raw_bucket}/penguins/"}],
        "Steps": [
            {
                "Name": "Preprocess",
                "Arguments": {
                    "RoleArn": resources.role_arn,
                    "Out": {"Std:Join": {"On": "/", "Values": [f"s3://{resources.artifacts_bucket}", "x"]}},
                    "Subnets": list(resources.subnet_ids),
                },
            }
        ],
    }


def test_placeholder_locations(dev: Stage) -> None:
    resources = PipelineResources.placeholders(dev)
    where = placeholder_locations(_tiny_definition(resources), resources)
    assert where["role_arn"] == ["Steps[0].Arguments.RoleArn"]
    assert where["raw_bucket"] == ["Parameters[0].DefaultValue"]
    assert where["artifacts_bucket"] == ["Steps[0].Arguments.Out.Std:Join.Values[0]"]
    assert where["subnet_ids[1]"] == ["Steps[0].Arguments.Subnets[1]"]
    assert where["image_uri"] == []


def test_split_on_placeholders_round_trips(dev: Stage) -> None:
    resources = PipelineResources.placeholders(dev)
    text = json.dumps(_tiny_definition(resources))
    pieces = split_on_placeholders(text, resources)
    values = resources.values()
    assert "".join(p if isinstance(p, str) else values[p[0]] for p in pieces) == text
    assert ("role_arn",) in pieces and ("artifacts_bucket",) in pieces
    assert not any(isinstance(p, str) and resources.role_arn in p for p in pieces)


def test_overlapping_placeholders_are_refused(dev: Stage) -> None:
    resources = PipelineResources.placeholders(dev).model_copy(update={"raw_bucket": "rookery-dev-art"})
    with pytest.raises(
        PlaceholderError, match="raw_bucket = 'rookery-dev-art' occurs inside artifacts_bucket"
    ):
        split_on_placeholders("{}", resources)


# -- parameter overrides --------------------------------------------------------------------------
DEFINITION: dict[str, Any] = {
    "Parameters": [
        {"Name": "InputDataUri", "Type": "String"},
        {"Name": "TrainingInstanceCount", "Type": "Integer"},
        {"Name": "TrainingMaxRuntimeSeconds", "Type": "Integer"},
        {"Name": "AucThreshold", "Type": "Float"},
        {"Name": "OperatingPoint", "Type": "String"},
        {"Name": "ModelApprovalStatus", "Type": "String"},
    ],
    "Steps": [
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {"StoppingCondition": {"MaxWaitTimeInSeconds": 7200}},
        }
    ],
}


def test_overrides_become_typed_execution_parameters() -> None:
    pairs = ["AucThreshold=0.9", "TrainingInstanceCount=2", "OperatingPoint=min_specificity:0.99"]
    assert pipeline_parameters(parse_overrides(DEFINITION, pairs)) == [
        {"Name": "AucThreshold", "Value": "0.9"},
        {"Name": "TrainingInstanceCount", "Value": "2"},
        {"Name": "OperatingPoint", "Value": "min_specificity:0.99"},
    ]
    assert parse_overrides(DEFINITION, ["InputDataUri=s3://b/penguins/ingest_date=2024-01-01/"]) == {
        "InputDataUri": "s3://b/penguins/ingest_date=2024-01-01/"
    }
    # Spaces around the name and value go; a name given twice takes the later value.
    assert parse_overrides(DEFINITION, [" AucThreshold = 0.8", "AucThreshold=0.9"]) == {"AucThreshold": "0.9"}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("AucThreshold", "write NAME=VALUE"),
        ("Nope=1", "the pipeline has no parameter 'Nope'; known: AucThreshold"),
        ("TrainingInstanceCount=two", "TrainingInstanceCount is an Integer"),
        ("AucThreshold=high", "AucThreshold is a Float"),
        ("AucThreshold=1.5", r"must be in \(0, 1\]"),
        ("TrainingInstanceCount=0", "must be at least 1"),
        ("InputDataUri=/tmp/data", "must be an s3:// URI"),
        ("ModelApprovalStatus=Yes", "must be one of PendingManualApproval, Approved, Rejected"),
        ("OperatingPoint=min_sensitivity", "needs a bar between 0 and 1"),
        ("TrainingMaxRuntimeSeconds=9000", r"spot training waits at most 7200 s .* use at most 7200"),
    ],
)
def test_bad_overrides_name_the_parameter_and_the_fix(pair: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_overrides(DEFINITION, [pair])


def test_a_stage_that_requires_approval_refuses_any_other_registration_status() -> None:
    """R1: the rendered parameter admits PendingManualApproval alone; the override says why."""
    definition = {
        **DEFINITION,
        "Parameters": [
            {"Name": "ModelApprovalStatus", "Type": "String", "EnumValues": ["PendingManualApproval"]},
            {"Name": "OperatingPoint", "Type": "String", "EnumValues": ["best_f1"]},
        ],
    }
    for status in ("Approved", "Rejected"):
        with pytest.raises(
            ParameterError, match="must be PendingManualApproval: this stage requires a person"
        ):
            parse_overrides(definition, [f"ModelApprovalStatus={status}"])
    assert parse_overrides(definition, ["ModelApprovalStatus=PendingManualApproval"]) == {
        "ModelApprovalStatus": "PendingManualApproval"
    }
    with pytest.raises(ParameterError, match=r"must be one of best_f1 \(the definition's EnumValues\)"):
        parse_overrides(definition, ["OperatingPoint=min_sensitivity:0.9"])
