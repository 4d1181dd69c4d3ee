"""The rendered definition, read as JSON: steps, DAG, parameters, perimeter flags, spot, gate, registry."""

from __future__ import annotations

import json
import os
from typing import Any

import botocore.endpoint
import pytest
from pipeline_testing import RENDER_GROUP, render

from pipelines import PipelineResources, PipelineSettings, contract, steps
from pipelines.definition import dig, iter_steps, steps_by_name
from pipelines.parameters import (
    AUC_THRESHOLD,
    INPUT_DATA_URI,
    MODEL_APPROVAL_STATUS,
    OPERATING_POINT,
    PROCESSING_INSTANCE_COUNT,
    PROCESSING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    TRAINING_INSTANCE_TYPE,
    TRAINING_MAX_RUNTIME,
    TRANSFORM_INSTANCE_COUNT,
    TRANSFORM_INSTANCE_TYPE,
)
from pipelines.perimeter import MAX_WAIT_SECONDS
from pipelines.reading.graph import dependencies
from rookery_contracts.metrics import METRIC_DEFINITIONS
from stage import Stage

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)

JOB_TYPES = ("Processing", "Training", "Tuning", "Transform")
BASELINE_URI = {"Get": "Steps.Baseline.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"}


def _jobs(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in iter_steps(definition["Steps"]) if s["Type"] in JOB_TYPES]


def _get(name: str) -> dict[str, str]:
    return {"Get": f"Parameters.{name}"}


def _training_job(definition: dict[str, Any]) -> dict[str, Any]:
    """The Train step's arguments, or the Tune step's training job definition."""
    by_name = steps_by_name(definition)
    if steps.TRAIN in by_name:
        return by_name[steps.TRAIN]["Arguments"]
    return by_name[steps.TUNE]["Arguments"]["TrainingJobDefinition"]


# -- steps and DAG --------------------------------------------------------------------------
def test_train_variant_steps_and_dag(train_definition: dict[str, Any]) -> None:
    assert [s["Name"] for s in train_definition["Steps"]] == [
        "Profile", "Fit", "Preprocess", "Train", "Evaluate", "Gate",
    ]  # fmt: skip
    assert dependencies(train_definition) == {
        "Profile": frozenset(),
        "Fit": {"Profile"},
        "Preprocess": {"Fit"},
        "Train": {"Preprocess"},
        "Evaluate": {"Preprocess", "Train"},
        "Gate": {"Evaluate"},
        "Baseline": {"Gate", "Preprocess", "Evaluate"},
        "Register": {"Gate", "Baseline", "Evaluate", "Train"},
        "CreateModel": {"Gate", "Register", "Evaluate", "Train"},
        "BatchTransform": {"Gate", "CreateModel", "Preprocess"},
        "Fail": {"Gate", "Evaluate"},
    }


def test_tune_variant_steps_and_dag(tune_definition: dict[str, Any]) -> None:
    assert [s["Name"] for s in tune_definition["Steps"]] == [
        "Profile", "Fit", "Preprocess", "Tune", "Evaluate", "Gate",
    ]  # fmt: skip
    graph = dependencies(tune_definition)
    assert graph["Tune"] == {"Preprocess"}
    assert graph["Evaluate"] == {"Preprocess", "Tune"}
    assert graph["Register"] == {"Gate", "Baseline", "Evaluate", "Tune"}
    assert "Train" not in graph


def test_gate_branches(definition: dict[str, Any]) -> None:
    gate = steps_by_name(definition)[steps.GATE]
    assert [s["Name"] for s in gate["Arguments"]["IfSteps"]] == [
        "Baseline",
        "Register",
        "CreateModel",
        "BatchTransform",
    ]
    assert [s["Name"] for s in gate["Arguments"]["ElseSteps"]] == ["Fail"]
    assert steps_by_name(definition)[steps.CREATE_MODEL]["DependsOn"] == ["Register"]


# -- parameters --------------------------------------------------------------------------
def test_parameters_and_defaults(definition: dict[str, Any], dev_stage: Stage) -> None:
    ml = dev_stage.ml
    declared = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert declared == {
        INPUT_DATA_URI: ("String", "s3://rookery-dev-raw/penguins/"),
        PROCESSING_INSTANCE_TYPE: ("String", ml.processing_instance_type),
        PROCESSING_INSTANCE_COUNT: ("Integer", ml.processing_instance_count),
        TRAINING_INSTANCE_TYPE: ("String", ml.training.instance_type),
        TRAINING_INSTANCE_COUNT: ("Integer", ml.training.instance_count),
        TRAINING_MAX_RUNTIME: ("Integer", 3600),
        TRANSFORM_INSTANCE_TYPE: ("String", ml.transform_instance_type),
        TRANSFORM_INSTANCE_COUNT: ("Integer", ml.transform_instance_count),
        AUC_THRESHOLD: ("Float", 0.85),
        OPERATING_POINT: ("String", "min_sensitivity:0.85"),
        MODEL_APPROVAL_STATUS: ("String", "PendingManualApproval"),
    }
    # R1: the stage requires approval, so no execution can pass another status (SageMaker and the
    # local engine refuse a value outside EnumValues).
    approval = next(p for p in definition["Parameters"] if p["Name"] == MODEL_APPROVAL_STATUS)
    assert approval["EnumValues"] == ["PendingManualApproval"]


def test_only_a_stage_that_skips_approval_accepts_other_statuses(dev_stage: Stage) -> None:
    stage = dev_stage.model_copy(
        update={"ml": dev_stage.ml.model_copy(update={"approval_status": "Approved"})}
    )
    definition = render(PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage)))
    approval = next(p for p in definition["Parameters"] if p["Name"] == MODEL_APPROVAL_STATUS)
    assert (approval["DefaultValue"], approval["EnumValues"]) == (
        "Approved",
        ["PendingManualApproval", "Approved", "Rejected"],
    )


def test_parameters_are_wired_into_the_jobs(definition: dict[str, Any]) -> None:
    by_name = steps_by_name(definition)
    preprocessing = (steps.PROFILE, steps.FIT, steps.PREPROCESS)
    for name in preprocessing:
        job = by_name[name]["Arguments"]
        assert dig(job, "ProcessingInputs", 0, "S3Input", "S3Uri") == _get(INPUT_DATA_URI)
    for name in (*preprocessing, steps.EVALUATE):
        cluster = by_name[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]
        assert cluster["InstanceType"] == _get(PROCESSING_INSTANCE_TYPE)
        # Evaluate needs the whole test split on one instance (test_pipeline_instances.py).
        assert cluster["InstanceCount"] == (_get(PROCESSING_INSTANCE_COUNT) if name in preprocessing else 1)
    job = _training_job(definition)
    assert job["ResourceConfig"]["InstanceType"] == _get(TRAINING_INSTANCE_TYPE)
    assert job["ResourceConfig"]["InstanceCount"] == _get(TRAINING_INSTANCE_COUNT)
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == _get(TRAINING_MAX_RUNTIME)
    transform = by_name[steps.BATCH_TRANSFORM]["Arguments"]["TransformResources"]
    assert transform["InstanceType"] == _get(TRANSFORM_INSTANCE_TYPE)
    assert transform["InstanceCount"] == _get(TRANSFORM_INSTANCE_COUNT)
    assert by_name[steps.EVALUATE]["Arguments"]["AppSpecification"]["ContainerArguments"] == [
        "--operating-point",
        _get(OPERATING_POINT),
        "--confidence",
        "0.9",
    ]
    assert by_name[steps.REGISTER]["Arguments"]["ModelApprovalStatus"] == _get(MODEL_APPROVAL_STATUS)


# -- the perimeter, on every job ------------------------------------------------------------------------
def test_every_job_runs_inside_the_perimeter(
    definition: dict[str, Any], dev_resources: PipelineResources
) -> None:
    subnets, groups = list(dev_resources.subnet_ids), list(dev_resources.security_group_ids)
    volume_key, output_key = dev_resources.volume_kms_key_arn, dev_resources.output_kms_key_arn
    seen = set()
    for step in _jobs(definition):
        args, kind = step["Arguments"], step["Type"]
        seen.add(kind)
        if kind == "Processing":
            network = args["NetworkConfig"]
            assert network["VpcConfig"] == {"SecurityGroupIds": groups, "Subnets": subnets}
            assert network["EnableNetworkIsolation"] is True
            assert network["EnableInterContainerTrafficEncryption"] is True
            assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == volume_key
            assert args["ProcessingOutputConfig"]["KmsKeyId"] == output_key
        elif kind in ("Training", "Tuning"):
            job = args if kind == "Training" else args["TrainingJobDefinition"]
            assert job["VpcConfig"] == {"SecurityGroupIds": groups, "Subnets": subnets}
            assert job["EnableNetworkIsolation"] is True
            assert job["EnableInterContainerTrafficEncryption"] is True
            assert job["ResourceConfig"]["VolumeKmsKeyId"] == volume_key
            assert job["OutputDataConfig"]["KmsKeyId"] == output_key
        else:  # Transform: storage and output keys here, network on its model
            assert args["TransformResources"]["VolumeKmsKeyId"] == volume_key
            assert args["TransformOutput"]["KmsKeyId"] == output_key
            assert args["ModelName"] == {"Get": "Steps.CreateModel.ModelName"}
    assert seen == {
        "Processing",
        "Transform",
        "Training" if steps.TRAIN in steps_by_name(definition) else "Tuning",
    }
    model = steps_by_name(definition)[steps.CREATE_MODEL]["Arguments"]
    assert model["VpcConfig"] == {"Subnets": subnets, "SecurityGroupIds": groups}
    assert model["EnableNetworkIsolation"] is True


def test_the_tuning_job_keeps_both_perimeter_flags(tune_definition: dict[str, Any]) -> None:
    """SDK v3's tuner drops these two flags; rookery's fix restores them. Fails if either goes missing."""
    job = steps_by_name(tune_definition)[steps.TUNE]["Arguments"]["TrainingJobDefinition"]
    assert job.get("EnableNetworkIsolation") is True, "tuning trials would run with network access"
    assert job.get("EnableInterContainerTrafficEncryption") is True, "tuning trials would talk unencrypted"


def test_every_image_is_the_project_image(
    definition: dict[str, Any], dev_resources: PipelineResources
) -> None:
    by_name = steps_by_name(definition)
    images = [
        by_name[steps.PREPROCESS]["Arguments"]["AppSpecification"]["ImageUri"],
        by_name[steps.EVALUATE]["Arguments"]["AppSpecification"]["ImageUri"],
        _training_job(definition)["AlgorithmSpecification"]["TrainingImage"],
        by_name[steps.REGISTER]["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"],
        by_name[steps.CREATE_MODEL]["Arguments"]["PrimaryContainer"]["Image"],
    ]
    assert images == [dev_resources.image_uri] * 5
    roles = {step["Arguments"].get("RoleArn") for step in _jobs(definition) if step["Type"] == "Processing"}
    assert roles == {dev_resources.role_arn}


# -- spot, checkpoints, stopping condition ----------------------------------------------------------------
def test_spot_training_with_checkpoints_and_a_bounded_wait(
    definition: dict[str, Any], dev_stage: Stage
) -> None:
    job = _training_job(definition)
    assert job["EnableManagedSpotTraining"] is True
    wait = job["StoppingCondition"]["MaxWaitTimeInSeconds"]
    assert wait == dev_stage.ml.training.max_wait_seconds
    assert dev_stage.ml.training.max_runtime_seconds <= wait <= MAX_WAIT_SECONDS
    checkpoint = job["CheckpointConfig"]
    assert checkpoint["LocalPath"] == contract.CHECKPOINT_LOCAL_PATH
    # Under the artifacts bucket, one prefix per execution: executions never resume each other.
    assert checkpoint["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://rookery-dev-artifacts",
                "rookery-dev-pipeline",
                {"Get": "Execution.PipelineExecutionId"},
                "checkpoints",
            ],
        }
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://rookery-dev-artifacts/rookery-dev-pipeline/models"


def test_no_spot_means_no_wait_bound(dev_stage: Stage, dev_resources: PipelineResources) -> None:
    definition = render(PipelineSettings.from_stage(dev_stage, dev_resources, tune=False, spot=False))
    job = steps_by_name(definition)[steps.TRAIN]["Arguments"]
    assert job["EnableManagedSpotTraining"] is False
    # SageMaker rejects MaxWaitTimeInSeconds on a job without managed spot training.
    assert "MaxWaitTimeInSeconds" not in job["StoppingCondition"]


# -- training contract --------------------------------------------------------------------------
def test_training_channels_hyperparameters_and_metrics(
    train_definition: dict[str, Any], dev_stage: Stage
) -> None:
    job = steps_by_name(train_definition)[steps.TRAIN]["Arguments"]
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert list(channels) == ["train", "validation", "preprocessor"]
    assert channels["train"]["ContentType"] == channels["validation"]["ContentType"] == "text/csv"
    assert channels["preprocessor"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['preprocessor'].S3Output.S3Uri"
    }
    expected = {k: str(v) for k, v in dev_stage.ml.training.hyperparameters.items()}
    assert job["HyperParameters"] == {**expected, "checkpoint_frequency": str(contract.CHECKPOINT_FREQUENCY)}
    definitions = job["AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions == list(METRIC_DEFINITIONS)
    assert {"Name": "validation:auc", "Regex": "validation-auc:([0-9.]+)"} in definitions
    assert {"Name": "train:auc", "Regex": "train-auc:([0-9.]+)"} in definitions
    assert "ContainerEntrypoint" not in job["AlgorithmSpecification"], "SageMaker runs the image's `train`"


def test_tuning_job_configuration(tune_definition: dict[str, Any], dev_stage: Stage) -> None:
    args = steps_by_name(tune_definition)[steps.TUNE]["Arguments"]
    config = args["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": dev_stage.ml.tuning.max_jobs,
        "MaxParallelTrainingJobs": dev_stage.ml.tuning.max_parallel_jobs,
    }
    ranges = config["ParameterRanges"]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "3", "MaxValue": "9", "ScalingType": "Linear"}
    ]
    assert {r["Name"] for r in ranges["ContinuousParameterRanges"]} == {
        "eta",
        "min_child_weight",
        "subsample",
    }
    static = args["TrainingJobDefinition"]["StaticHyperParameters"]
    assert not {"max_depth", "eta", "min_child_weight", "subsample"} & set(static), (
        "tuned values are not static"
    )
    assert static["objective"] == "binary:logistic"
    # The best training job's model is the one evaluated and registered.
    evaluate = steps_by_name(tune_definition)[steps.EVALUATE]["Arguments"]
    model_input = next(i for i in evaluate["ProcessingInputs"] if i["InputName"] == "model")
    assert model_input["S3Input"]["S3Uri"] == {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://rookery-dev-artifacts/rookery-dev-pipeline/models",
                {"Get": "Steps.Tune.BestTrainingJob.TrainingJobName"},
                "output",
                "model.tar.gz",
            ],
        }
    }


def test_processing_contract(definition: dict[str, Any], dev_stage: Stage) -> None:
    by_name = steps_by_name(definition)
    programs = {
        steps.PROFILE: ("preprocess_profile.py", [], ["profile"]),
        steps.FIT: ("preprocess_fit.py", ["profile"], ["fit"]),
        steps.PREPROCESS: ("preprocess.py", ["fit"], list(contract.PREPROCESS_OUTPUTS)),
    }
    for name, (program, reads, writes) in programs.items():
        job = by_name[name]["Arguments"]
        assert job["AppSpecification"]["ContainerEntrypoint"] == ["python3", f"/opt/program/{program}"]
        # The same arguments for the three jobs: they cannot disagree on the split.
        assert job["AppSpecification"]["ContainerArguments"] == [
            "--split", "0.7,0.15,0.15", "--seed", str(dev_stage.ml.split.seed), "--standardize", "false",
            "--max-invalid-fraction", "0.01",
            "--train-files", {"Std:Join": {"On": "", "Values": [_get(TRAINING_INSTANCE_COUNT)]}},
        ]  # fmt: skip
        assert job["Environment"] == {"ROOKERY_DATASET_SCHEMA": dev_stage.dataset.to_json()}
        inputs = {
            i["InputName"]: (i["S3Input"]["LocalPath"], i["S3Input"]["S3DataDistributionType"])
            for i in job["ProcessingInputs"]
        }
        # Each instance reads its share of the raw objects, and the whole previous job's output.
        assert inputs == {
            "raw": ("/opt/ml/processing/input/raw", "ShardedByS3Key"),
            **{r: (f"/opt/ml/processing/input/{r}", "FullyReplicated") for r in reads},
        }
        for r in reads:
            source = next(i for i in job["ProcessingInputs"] if i["InputName"] == r)["S3Input"]["S3Uri"]
            assert source == {"Get": f"Steps.{list(programs)[list(programs).index(name) - 1]}."
                              f"ProcessingOutputConfig.Outputs['{r}'].S3Output.S3Uri"}  # fmt: skip
        outputs = {
            o["OutputName"]: o["S3Output"]["LocalPath"] for o in job["ProcessingOutputConfig"]["Outputs"]
        }
        assert outputs == {w: f"/opt/ml/processing/output/{w}" for w in writes}
    evaluate = by_name[steps.EVALUATE]
    assert evaluate["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/program/evaluate.py",
    ]
    inputs = {i["InputName"]: i["S3Input"]["LocalPath"] for i in evaluate["Arguments"]["ProcessingInputs"]}
    assert inputs == {name: f"/opt/ml/processing/input/{name}" for name in ("model", "test", "validation")}
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]


# -- gate, fail, registry, transform ------------------------------------------------------------------
def _json_get(path: str) -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": path,
        }
    }


def test_gate_thresholds(definition: dict[str, Any]) -> None:
    conditions = steps_by_name(definition)[steps.GATE]["Arguments"]["Conditions"]
    assert conditions == [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": _json_get("binary_classification_metrics.auc.value"),
            "RightValue": _get(AUC_THRESHOLD),
        },
        {"Type": "Equals", "LeftValue": _json_get("operating_point.met"), "RightValue": 1},
    ]


def test_fail_message_names_metric_value_and_bar(definition: dict[str, Any]) -> None:
    message = steps_by_name(definition)[steps.FAIL]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["On"] == ""
    values = message["Values"]
    assert _json_get("binary_classification_metrics.auc.value") in values
    assert _get(AUC_THRESHOLD) in values
    for part in ("metric", "value", "bar", "met"):
        assert _json_get(f"operating_point.{part}") in values
    text = "".join(v for v in values if isinstance(v, str))
    assert "auc = " in text and "bar" in text and "operating point" in text


def test_registry_settings(
    definition: dict[str, Any], dev_resources: PipelineResources, dev_stage: Stage
) -> None:
    args = steps_by_name(definition)[steps.REGISTER]["Arguments"]
    assert args["ModelPackageGroupName"] == dev_resources.model_package_group_name
    spec = args["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json", "application/jsonlines"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == list(dev_stage.ml.inference_instance_types)
    assert spec["SupportedTransformInstanceTypes"] == [dev_stage.ml.transform_instance_type]
    container = spec["Containers"][0]
    # The decision threshold travels with the registered model.
    assert container["Environment"] == {
        "ROOKERY_DECISION_THRESHOLD": {
            "Std:Join": {"On": "", "Values": [_json_get("decision_threshold.value")]}
        }
    }
    # The baseline travels with the model: Model Monitor's files for data and model quality, as
    # the package's metrics and as its drift-check baselines.
    assert (
        args["ModelMetrics"]
        == args["DriftCheckBaselines"]
        == {
            section: {
                kind: {
                    "ContentType": "application/json",
                    "S3Uri": {"Std:Join": {"On": "/", "Values": [BASELINE_URI, f"{folder}/{name}"]}},
                }
                for kind, name in (("Statistics", "statistics.json"), ("Constraints", "constraints.json"))
            }
            for section, folder in (("ModelDataQuality", "data-quality"), ("ModelQuality", "model-quality"))
        }
    )
    # The batch model serves exactly the registered container.
    model = steps_by_name(definition)[steps.CREATE_MODEL]["Arguments"]
    assert model["PrimaryContainer"] == container
    assert model["ExecutionRoleArn"] == dev_resources.role_arn


def test_baseline_step_profiles_the_training_split_with_the_stages_thresholds(
    definition: dict[str, Any], dev_stage: Stage
) -> None:
    args = steps_by_name(definition)[steps.BASELINE]["Arguments"]
    app = args["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python3", "/opt/program/baseline.py"]
    assert app["ContainerArguments"][0] == "--thresholds"
    monitoring = dev_stage.monitoring
    assert json.loads(app["ContainerArguments"][1]) == {
        "drift": monitoring.drift.model_dump(),
        "quality": monitoring.quality.model_dump(),
    }
    sources = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
    assert sources == {
        "baseline_records": {
            "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline_records'].S3Output.S3Uri"
        },
        "evaluation": {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
    }
    assert [o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]] == ["baseline"]
    assert json.loads(args["Environment"]["ROOKERY_DATASET_SCHEMA"]) == dev_stage.dataset.to_dict()


def test_no_job_output_name_is_a_prefix_of_another() -> None:
    """Each output is an S3 prefix: 'train' would also stage everything under 'training_records'."""
    for names in (
        (*contract.PREPROCESS_OUTPUTS, contract.PROFILE_OUTPUT, contract.FIT_OUTPUT),
        (contract.EVALUATION_OUTPUT, contract.BASELINE_OUTPUT),
    ):
        assert not [(a, b) for a in names for b in names if a != b and b.startswith(a)]


def test_batch_transform_of_the_test_split(definition: dict[str, Any]) -> None:
    args = steps_by_name(definition)[steps.BATCH_TRANSFORM]["Arguments"]
    source = args["TransformInput"]
    assert source["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['inference'].S3Output.S3Uri"
    }
    assert source["ContentType"] == "application/jsonlines"
    assert source["SplitType"] == "Line"
    assert args["TransformOutput"]["AssembleWith"] == "Line"
    assert args["TransformOutput"]["Accept"] == "application/jsonlines"


# -- the builder itself --------------------------------------------------------------------------
def test_render_needs_no_aws_sends_no_telemetry_and_restores_the_environment(
    train_settings: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sagemaker.core.telemetry.telemetry_logging as telemetry  # noqa: PLC0415 - imported by render()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the render tried to reach AWS")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)
    monkeypatch.setattr(telemetry, "_send_telemetry_request", refuse)
    monkeypatch.delenv("SAGEMAKER_VALIDATE_ROLE", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "a-profile-this-machine-does-not-have")
    before = dict(os.environ)
    render(train_settings)
    assert dict(os.environ) == before
