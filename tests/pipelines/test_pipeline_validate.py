"""``validate_definition``: the perimeter (T1-T6), the botocore request shapes, the references."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pipeline_testing import BUILTIN_REASON, RENDER_GROUP, raw_sdk_definition

from pipelines import PipelineResources, PipelineSettings, fixes, validate_definition
from pipelines.definition import steps_by_name
from pipelines.findings import Finding, acknowledgements
from pipelines.perimeter import MAX_WAIT_SECONDS, Expected
from pipelines.settings import BUILTIN_XGBOOST_LAYOUT, BUILTIN_XGBOOST_REPOSITORY, BUILTIN_XGBOOST_VERSION
from pipelines.validate import DefinitionError, expected_for, load_definition
from rookery_contracts.model_layout import MODEL_LAYOUT

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)

Mutation = Callable[[dict[str, Any]], None]
OTHER_IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/other:1"


def _step(definition: dict[str, Any], name: str) -> Any:
    return steps_by_name(definition)[name]


def _args(definition: dict[str, Any], name: str) -> Any:
    return _step(definition, name)["Arguments"]


def _blocking(definition: dict[str, Any], expected: Expected | None = None) -> list[Finding]:
    return [f for f in validate_definition(definition, expected) if f.blocking]


def test_both_variants_pass_every_check(definition: dict[str, Any], dev_resources: PipelineResources) -> None:
    assert validate_definition(definition) == []
    assert validate_definition(definition, expected_for(dev_resources)) == []


def test_the_raw_sdk_tuning_job_fails_the_perimeter(tune_settings: PipelineSettings) -> None:
    """What SDK v3 renders before rookery's fixes: the check catches the dropped flags."""
    raw = raw_sdk_definition(tune_settings)
    found = {(f.step, f.control, f.field) for f in _blocking(raw)}
    assert ("Tune", "T2", "TrainingJobDefinition.EnableNetworkIsolation") in found
    assert ("Tune", "T3", "TrainingJobDefinition.EnableInterContainerTrafficEncryption") in found
    assert ("Tune", "T4", "TrainingJobDefinition.ResourceConfig.VolumeKmsKeyId") in found
    assert _blocking(fixes.apply(raw, tune_settings)) == []


def test_restore_tuning_perimeter_sets_each_dropped_flag(
    tune_definition: dict[str, Any], tune_settings: PipelineSettings
) -> None:
    broken = copy.deepcopy(tune_definition)
    job = _args(broken, "Tune")["TrainingJobDefinition"]
    for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"):
        job.pop(flag)
    job["ResourceConfig"].pop("VolumeKmsKeyId")
    assert fixes.restore_tuning_perimeter(broken, tune_settings) == tune_definition
    assert "EnableNetworkIsolation" not in job, "the fix works on a copy"


# -- each control catches its violation ------------------------------------------------------------
def _drop(*path: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node = _args(d, path[0])
        for key in path[1:-1]:
            node = node[key]
        node.pop(path[-1])

    return mutate


def _set(value: Any, *path: str | int) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = _args(d, str(path[0]))
        for key in path[1:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


class Case(NamedTuple):
    """A variant, a mutation of it, and the (step, control, field) finding it must cause."""

    variant: str
    mutate: Mutation
    finding: tuple[str, str, str]
    # Found only against the stage's resources (validate --resources): a well-formed value that is
    # someone else's. Without them the check can only require the setting to be present.
    stage_only: bool = False


OTHER_SUBNET = "subnet-0aaaaaaaaaaaaaaaa"
OTHER_GROUP = "sg-0bbbbbbbbbbbbbbbb"


def _append(value: Any, *path: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = _args(d, path[0])
        for key in path[1:]:
            node = node[key]
        node.append(value)

    return mutate


PERIMETER_CASES: dict[str, Case] = {
    "processing without subnets": Case(
        "train",
        _set([], "Preprocess", "NetworkConfig", "VpcConfig", "Subnets"),
        ("Preprocess", "T1", "NetworkConfig.VpcConfig.Subnets"),
    ),
    "profiling without traffic encryption": Case(
        "train",
        _set(False, "Profile", "NetworkConfig", "EnableInterContainerTrafficEncryption"),
        ("Profile", "T3", "NetworkConfig.EnableInterContainerTrafficEncryption"),
    ),
    "fitting output without a key": Case(
        "tune",
        _drop("Fit", "ProcessingOutputConfig", "KmsKeyId"),
        ("Fit", "T4", "ProcessingOutputConfig.KmsKeyId"),
    ),
    "training without a VPC": Case(
        "train", _drop("Train", "VpcConfig"), ("Train", "T1", "VpcConfig.Subnets")
    ),
    "processing with network access": Case(
        "train",
        _set(False, "Evaluate", "NetworkConfig", "EnableNetworkIsolation"),
        ("Evaluate", "T2", "NetworkConfig.EnableNetworkIsolation"),
    ),
    "training without traffic encryption": Case(
        "train",
        _drop("Train", "EnableInterContainerTrafficEncryption"),
        ("Train", "T3", "EnableInterContainerTrafficEncryption"),
    ),
    "processing volume without a key": Case(
        "train",
        _drop("Preprocess", "ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"),
        ("Preprocess", "T4", "ProcessingResources.ClusterConfig.VolumeKmsKeyId"),
    ),
    "training output without a key": Case(
        "train",
        _drop("Train", "OutputDataConfig", "KmsKeyId"),
        ("Train", "T4", "OutputDataConfig.KmsKeyId"),
    ),
    "transform output without a key": Case(
        "train",
        _drop("BatchTransform", "TransformOutput", "KmsKeyId"),
        ("BatchTransform", "T4", "TransformOutput.KmsKeyId"),
    ),
    "transform volume without a key": Case(
        "train",
        _drop("BatchTransform", "TransformResources", "VolumeKmsKeyId"),
        ("BatchTransform", "T4", "TransformResources.VolumeKmsKeyId"),
    ),
    "spot without checkpoints": Case(
        "train",
        _drop("Train", "CheckpointConfig"),
        ("Train", "T5", "CheckpointConfig.S3Uri"),
    ),
    "spot with an unbounded wait": Case(
        "train",
        _set(MAX_WAIT_SECONDS + 1, "Train", "StoppingCondition", "MaxWaitTimeInSeconds"),
        ("Train", "T5", "StoppingCondition.MaxWaitTimeInSeconds"),
    ),
    "spot wait shorter than the runtime": Case(
        "train",
        _set(600, "Train", "StoppingCondition", "MaxWaitTimeInSeconds"),
        ("Train", "T5", "StoppingCondition.MaxWaitTimeInSeconds"),
    ),
    "a wait bound without spot": Case(
        "train",
        _set(False, "Train", "EnableManagedSpotTraining"),
        ("Train", "T5", "StoppingCondition.MaxWaitTimeInSeconds"),
    ),
    "tuning trials without isolation": Case(
        "tune",
        _set(False, "Tune", "TrainingJobDefinition", "EnableNetworkIsolation"),
        ("Tune", "T2", "TrainingJobDefinition.EnableNetworkIsolation"),
    ),
    "tuning spot without a wait": Case(
        "tune",
        _drop("Tune", "TrainingJobDefinition", "StoppingCondition", "MaxWaitTimeInSeconds"),
        ("Tune", "T5", "TrainingJobDefinition.StoppingCondition.MaxWaitTimeInSeconds"),
    ),
    "batch model with network access": Case(
        "train",
        _set(False, "CreateModel", "EnableNetworkIsolation"),
        ("CreateModel", "T2", "EnableNetworkIsolation"),
    ),
    "batch model in another VPC's subnets": Case(
        "train",
        _set([OTHER_SUBNET], "CreateModel", "VpcConfig", "Subnets"),
        ("CreateModel", "T1", "VpcConfig.Subnets"),
        stage_only=True,
    ),
    "batch model with one subnet too many": Case(
        "tune",
        _append(OTHER_SUBNET, "CreateModel", "VpcConfig", "Subnets"),
        ("CreateModel", "T1", "VpcConfig.Subnets"),
        stage_only=True,
    ),
    "batch model in another security group": Case(
        "tune",
        _set([OTHER_GROUP], "CreateModel", "VpcConfig", "SecurityGroupIds"),
        ("CreateModel", "T1", "VpcConfig.SecurityGroupIds"),
        stage_only=True,
    ),
    "batch model with an empty subnet id": Case(
        "train",
        _set([""], "CreateModel", "VpcConfig", "Subnets"),
        ("CreateModel", "T1", "VpcConfig.Subnets"),
    ),
    "batch model without a VPC": Case(
        "train",
        _drop("CreateModel", "VpcConfig"),
        ("CreateModel", "T1", "VpcConfig.SecurityGroupIds"),
    ),
    "transform on a model from elsewhere": Case(
        "train",
        _set("someone-elses-model", "BatchTransform", "ModelName"),
        ("BatchTransform", "T1", "ModelName"),
    ),
    "a public image": Case(
        "train",
        _set("python:3.11", "Evaluate", "AppSpecification", "ImageUri"),
        ("Evaluate", "T6", "AppSpecification.ImageUri"),
    ),
    "another account's ECR image": Case(
        "train",
        _set(OTHER_IMAGE, "Train", "AlgorithmSpecification", "TrainingImage"),
        ("Train", "T6", "AlgorithmSpecification.TrainingImage"),
    ),
    "a registered package serving another image": Case(
        "train",
        _set(OTHER_IMAGE, "Register", "InferenceSpecification", "Containers", 0, "Image"),
        ("Register", "T6", "InferenceSpecification.Containers[0].Image"),
    ),
}


@pytest.mark.parametrize("case", list(PERIMETER_CASES))
def test_each_control_catches_its_violation(
    case: str,
    train_definition: dict[str, Any],
    tune_definition: dict[str, Any],
    dev_resources: PipelineResources,
) -> None:
    variant, mutate, wanted, stage_only = PERIMETER_CASES[case]
    broken = copy.deepcopy(train_definition if variant == "train" else tune_definition)
    mutate(broken)
    # Against the stage's resources every case is caught; without them, all but the stage-only ones.
    against_stage = {(f.step, f.control, f.field): f for f in _blocking(broken, expected_for(dev_resources))}
    assert wanted in against_stage, sorted(against_stage)
    assert against_stage[wanted].fix, "every finding says how to fix it"
    without = {(f.step, f.control, f.field) for f in _blocking(broken)}
    assert (wanted in without) is not stage_only, sorted(without)


def test_expected_resources_are_compared(
    train_definition: dict[str, Any], dev_resources: PipelineResources
) -> None:
    other = dev_resources.model_copy(
        update={
            "subnet_ids": ("subnet-0aaaaaaaaaaaaaaaa",),
            "output_kms_key_arn": "arn:aws:kms:eu-west-1:000000000000:key/other",
        }
    )
    controls = {(f.step, f.control) for f in _blocking(train_definition, expected_for(other))}
    assert {
        ("Profile", "T1"), ("Fit", "T1"), ("Preprocess", "T1"), ("Fit", "T4"),
        ("Train", "T1"), ("Train", "T4"), ("BatchTransform", "T4"),
    } <= controls  # fmt: skip


def _training(definition: dict[str, Any]) -> tuple[Any, Any]:
    """The training step (Train or Tune) and its training job's arguments."""
    by_name = steps_by_name(definition)
    if "Train" in by_name:
        return by_name["Train"], by_name["Train"]["Arguments"]
    return by_name["Tune"], by_name["Tune"]["Arguments"]["TrainingJobDefinition"]


def test_builtin_image_is_reported_unless_acknowledged(
    builtin_definition: dict[str, Any], dev_resources: PipelineResources
) -> None:
    step, job = _training(builtin_definition)
    assert acknowledgements(step) == {"T6": BUILTIN_REASON}
    image = job["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(f"/{BUILTIN_XGBOOST_REPOSITORY}:{BUILTIN_XGBOOST_VERSION}"), image
    hyperparameters = job.get("HyperParameters") or job["StaticHyperParameters"]
    assert "checkpoint_frequency" not in hyperparameters, "the built-in image rejects it"
    assert "MetricDefinitions" not in job["AlgorithmSpecification"], "the built-in algorithm defines its own"
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]
    # Only training changes: evaluation and serving stay on the project image.
    by_name = steps_by_name(builtin_definition)
    assert {
        by_name["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"],
        by_name["Register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"],
        by_name["CreateModel"]["Arguments"]["PrimaryContainer"]["Image"],
    } == {dev_resources.image_uri}

    findings = validate_definition(builtin_definition)
    assert [(f.step, f.control, f.acknowledged) for f in findings] == [(step["Name"], "T6", BUILTIN_REASON)]
    assert not any(f.blocking for f in findings)
    # The finding says what the option leaves to the project image.
    assert findings[0].message == (
        f"image {image} is not the project image {dev_resources.image_uri}; {BUILTIN_XGBOOST_LAYOUT}"
    )

    silent = copy.deepcopy(builtin_definition)
    _training(silent)[0].pop("Description")
    assert [(f.step, f.control) for f in _blocking(silent)] == [(step["Name"], "T6")]
    assert BUILTIN_XGBOOST_LAYOUT in _blocking(silent)[0].message


def test_the_layout_message_names_the_steps_and_the_model_files() -> None:
    for part in ("Evaluate", "Register", "CreateModel", "project's model layout", *MODEL_LAYOUT):
        assert part in BUILTIN_XGBOOST_LAYOUT
    assert 'ml.training.image = "project"' in BUILTIN_XGBOOST_LAYOUT


def test_another_images_message_does_not_mention_the_layout(
    train_definition: dict[str, Any], dev_resources: PipelineResources
) -> None:
    broken = copy.deepcopy(train_definition)
    _set(OTHER_IMAGE, "Train", "AlgorithmSpecification", "TrainingImage")(broken)
    (finding,) = _blocking(broken)
    assert finding.message == f"image {OTHER_IMAGE} is not the project image {dev_resources.image_uri}"


def test_a_short_reason_does_not_acknowledge() -> None:
    assert acknowledgements({"Description": "Acknowledged T6: because"}) == {}
    assert acknowledgements({"Description": f"Acknowledged T6: {BUILTIN_REASON}"}) == {"T6": BUILTIN_REASON}


# -- botocore request shapes --------------------------------------------------------------------------
SHAPE_CASES: dict[str, tuple[Mutation, str, str]] = {
    "a string where the API wants an integer": (
        _set("30", "Preprocess", "ProcessingResources", "ClusterConfig", "VolumeSizeInGB"),
        "Preprocess",
        "Invalid type for parameter ProcessingResources.ClusterConfig.VolumeSizeInGB",
    ),
    "a string parameter where the API wants an integer": (
        _set({"Get": "Parameters.TrainingInstanceType"}, "Train", "ResourceConfig", "InstanceCount"),
        "Train",
        "Invalid type for parameter ResourceConfig.InstanceCount",
    ),
    "a Join where the API wants a boolean": (
        _set({"Std:Join": {"On": "", "Values": ["true"]}}, "Train", "EnableNetworkIsolation"),
        "Train",
        "Invalid type for parameter EnableNetworkIsolation",
    ),
    "an unknown member": (
        _set(1, "Evaluate", "ProcessingResources", "ClusterConfig", "Bogus"),
        "Evaluate",
        'Unknown parameter in ProcessingResources.ClusterConfig: "Bogus"',
    ),
    "a missing required member": (
        _drop("BatchTransform", "TransformInput"),
        "BatchTransform",
        "Missing required parameter",
    ),
    "a value outside the API's enum": (
        _set("S3Prefx", "Preprocess", "ProcessingInputs", 0, "S3Input", "S3DataType"),
        "Preprocess",
        "'S3Prefx' is not a value the API accepts",
    ),
    "a transform instance type batch transform does not offer": (
        _set(["ml.c5.large"], "Register", "InferenceSpecification", "SupportedTransformInstanceTypes"),
        "Register",
        "'ml.c5.large' is not a value the API accepts",
    ),
    "a role that is not a role ARN": (
        _set("my-role", "Preprocess", "RoleArn"),
        "Preprocess",
        "Invalid length for parameter RoleArn",
    ),
}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_shape_validation_catches(case: str, train_definition: dict[str, Any]) -> None:
    mutate, step, message = SHAPE_CASES[case]
    broken = copy.deepcopy(train_definition)
    mutate(broken)
    shape = [f for f in _blocking(broken) if f.control == "SHAPE"]
    assert any(f.step == step and message in f.message for f in shape), [f.message for f in shape]


def test_a_parameter_default_outside_the_enum_is_caught(train_definition: dict[str, Any]) -> None:
    broken = copy.deepcopy(train_definition)
    next(p for p in broken["Parameters"] if p["Name"] == "ProcessingInstanceType")["DefaultValue"] = (
        "ml.m5.huge"
    )
    shape = [f for f in _blocking(broken) if f.control == "SHAPE"]
    assert {f.step for f in shape} == {"Profile", "Fit", "Preprocess", "Evaluate", "Baseline"}
    assert all("default of parameter ProcessingInstanceType: 'ml.m5.huge'" in f.message for f in shape)


# -- references --------------------------------------------------------------------------
REFERENCE_CASES: dict[str, tuple[Mutation, str]] = {
    "an undeclared parameter": (
        _set({"Get": "Parameters.Nope"}, "Train", "ResourceConfig", "InstanceType"),
        "undeclared parameter 'Nope'",
    ),
    "an unknown step": (
        _set({"Get": "Steps.Nope.ModelName"}, "BatchTransform", "ModelName"),
        "unknown step in 'Steps.Nope.ModelName'",
    ),
    "an undeclared property file": (
        _set({"Get": "Steps.Preprocess.PropertyFiles.EvaluationReport"}, "Train", "RoleArn"),
        "property file 'EvaluationReport', which step 'Preprocess' does not declare",
    ),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES))
def test_references_are_checked(case: str, train_definition: dict[str, Any]) -> None:
    mutate, message = REFERENCE_CASES[case]
    broken = copy.deepcopy(train_definition)
    mutate(broken)
    assert any(f.control == "REF" and message in f.message for f in _blocking(broken))


# -- reading a file --------------------------------------------------------------------------
def test_load_definition_refuses_what_is_not_a_definition(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"cannot read .*missing\.json"):
        load_definition(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"is not JSON .* render it again"):
        load_definition(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"Resources": {}}', encoding="utf-8")
    with pytest.raises(DefinitionError, match="no 'Steps' list: it is not a SageMaker pipeline definition"):
        load_definition(tmp_path / "other.json")
