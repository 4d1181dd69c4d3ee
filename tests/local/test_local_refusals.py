"""Everything the engine cannot run is refused before anything runs, naming the step and the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from local_testing import engine_for, step_named

from emulators.sagemaker import (
    Execution,
    ImageMap,
    InterruptPlan,
    LocalEngine,
    LocalEngineError,
    LocalHome,
    ParameterError,
    StepEvent,
    UnsupportedDefinition,
)
from emulators.sagemaker.models import Note
from stage import Stage

Definition = dict[str, Any]


def _nothing_ran(home: LocalHome) -> None:
    assert not home.executions_dir.exists(), "a refused definition must not start an execution"
    assert not home.s3_root.exists(), "a refused definition must not write anything"


def _refused(engine: LocalEngine, definition: Definition, **kwargs: Any) -> UnsupportedDefinition:
    with pytest.raises(UnsupportedDefinition) as caught:
        engine.run(definition, **kwargs)
    _nothing_ran(engine.home)
    return caught.value


def test_the_rendered_definitions_pass_the_check(
    dev_stage: Stage, dev_train_definition: Definition, tune_definition: Definition, tmp_home: LocalHome
) -> None:
    engine = engine_for(dev_stage, tmp_home)
    engine.check(dev_train_definition)
    engine.check(tune_definition)
    _nothing_ran(tmp_home)


def test_an_unsupported_step_type_is_refused_naming_the_step(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    definition["Steps"].append(
        {
            "Name": "Notify",
            "Type": "Lambda",
            "Arguments": {},
            "FunctionArn": "arn:aws:lambda:eu-west-1:1:function:x",
        }
    )
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert (error.step, error.field) == ("Notify", "Type")
    assert "'Lambda' cannot run locally" in str(error)


@pytest.mark.parametrize("kind", ["Callback", "EMR", "ClarifyCheck", "QualityCheck", "AutoML"])
def test_other_step_types_the_engine_cannot_run_are_refused(
    kind: str, dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    # Nested in the gate's if-branch: refusals reach every step, not just the top level.
    gate = step_named(definition, "Gate")
    index = next(i for i, s in enumerate(definition["Steps"]) if s["Name"] == "Gate")
    gate["Arguments"]["IfSteps"].append({"Name": "Extra", "Type": kind, "Arguments": {}})
    definition["Steps"][index] = gate
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert (error.step, error.field) == ("Extra", "Type")


def test_an_unknown_property_reference_is_refused_before_anything_runs(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    evaluate = step_named(definition, "Evaluate")
    evaluate["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"
    }
    definition["Steps"][[s["Name"] for s in definition["Steps"]].index("Evaluate")] = evaluate
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert error.step == "Evaluate"
    assert error.field == "Arguments.ProcessingInputs[0].S3Input.S3Uri"
    assert "S3ModelArtifact" in error.problem and "DescribeTrainingJobResponse" not in error.problem
    assert "ModelArtifacts has no member 'S3ModelArtifact'" in error.problem


def _edit(step: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Definition], None]:
    def apply(definition: Definition) -> None:
        target = step_named(definition, step)
        change(target)
        for i, s in enumerate(definition["Steps"]):
            if s["Name"] == step:
                definition["Steps"][i] = target

    return apply


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(step: dict[str, Any]) -> None:
        node = step["Arguments"]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a key of the step itself (beside its Arguments)."""

    def change(step: dict[str, Any]) -> None:
        step[key] = value

    return change


def _top(key: str, value: Any) -> Callable[[Definition], None]:
    def apply(definition: Definition) -> None:
        definition[key] = value

    return apply


def _in_branch(step: str, key: str, value: Any) -> Callable[[Definition], None]:
    """Set a key of a step inside the gate's if-branch (nested steps are held to the same list)."""

    def apply(definition: Definition) -> None:
        gate = next(s for s in definition["Steps"] if s["Name"] == "Gate")
        next(s for s in gate["Arguments"]["IfSteps"] if s["Name"] == step)[key] = value

    return apply


PROPERTY_FILE = {"PropertyFileName": "Metrics", "OutputName": "model", "FilePath": "metrics.json"}
RETRY = [{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 1, "MaxAttempts": 3}]

REFUSALS = [
    (
        "an undeclared parameter",
        _edit("Train", _set(["ResourceConfig", "InstanceType"], {"Get": "Parameters.Nope"})),
        "Train",
        "Arguments.ResourceConfig.InstanceType",
        "no parameter 'Nope'",
    ),
    (
        "a step that does not exist",
        _edit(
            "Train",
            _set(["InputDataConfig", 0, "DataSource", "S3DataSource", "S3Uri"], {"Get": "Steps.Prep.Foo"}),
        ),
        "Train",
        "Arguments.InputDataConfig[0].DataSource.S3DataSource.S3Uri",
        "there is no step 'Prep'",
    ),
    (
        "a processing output index that is not a list member",
        _edit(
            "Train",
            _set(
                ["InputDataConfig", 0, "DataSource", "S3DataSource", "S3Uri"],
                {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs.S3Output"},
            ),
        ),
        "Train",
        "Arguments.InputDataConfig[0].DataSource.S3DataSource.S3Uri",
        "unknown property of Processing step 'Preprocess'",
    ),
    (
        "an unknown execution variable",
        _edit("Preprocess", _set(["Environment", "X"], {"Get": "Execution.Nonsense"})),
        "Preprocess",
        "Arguments.Environment.X",
        "unknown execution variable",
    ),
    (
        "a training job's name outside a training step",
        _edit("Preprocess", _set(["Environment", "X"], {"Get": "Execution.TrainingJobName"})),
        "Preprocess",
        "Arguments.Environment.X",
        "the local engine gives it a value only in a Training step",
    ),
    (
        "a JSON value read from an S3 object",
        _edit("Fail", _set(["ErrorMessage"], {"Std:JsonGet": {"S3Uri": "s3://b/result.json", "Path": "x"}})),
        "Fail",
        "Arguments.ErrorMessage.S3Uri",
        "Std:JsonGet over an S3Uri is not supported locally",
    ),
    (
        "an unknown function",
        _edit("Preprocess", _set(["Environment", "X"], {"Std:Concat": ["a", "b"]})),
        "Preprocess",
        "Arguments.Environment.X",
        "'Std:Concat' is not supported",
    ),
    (
        "a LocalPath outside /opt/ml",
        _edit("Preprocess", _set(["ProcessingInputs", 0, "S3Input", "LocalPath"], "/tmp/raw")),
        "Preprocess",
        "Arguments.ProcessingInputs[0].S3Input.LocalPath",
        "outside /opt/ml",
    ),
    (
        "a LocalPath climbing out of /opt/ml",
        _edit(
            "Preprocess",
            _set(["ProcessingOutputConfig", "Outputs", 0, "S3Output", "LocalPath"], "/opt/ml/../etc"),
        ),
        "Preprocess",
        "Arguments.ProcessingOutputConfig.Outputs[0].S3Output.LocalPath",
        "outside /opt/ml",
    ),
    (
        "an output that is not an s3:// URI",
        _edit("Train", _set(["OutputDataConfig", "S3OutputPath"], "https://example.com/models")),
        "Train",
        "Arguments.OutputDataConfig.S3OutputPath",
        "not an s3:// URI",
    ),
    (
        "an image the map cannot run",
        _edit(
            "Train",
            _set(
                ["AlgorithmSpecification", "TrainingImage"],
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/other:1",
            ),
        ),
        "Train",
        "Arguments.AlgorithmSpecification.TrainingImage",
        "is not one the local engine can run",
    ),
    (
        "an entrypoint outside the program",
        _edit("Preprocess", _set(["AppSpecification", "ContainerEntrypoint"], ["bash", "-c", "echo hi"])),
        "Preprocess",
        "Arguments.AppSpecification.ContainerEntrypoint",
        "cannot run locally",
    ),
    (
        "a processing job without an entrypoint",
        _edit("Evaluate", lambda s: s["Arguments"]["AppSpecification"].pop("ContainerEntrypoint")),
        "Evaluate",
        "Arguments.AppSpecification.ContainerEntrypoint",
        "is required locally (['python3', '/opt/program/<script>.py'])",
    ),
    (
        "a script that is not in the image",
        _edit(
            "Evaluate",
            _set(["AppSpecification", "ContainerEntrypoint"], ["python3", "/opt/program/missing.py"]),
        ),
        "Evaluate",
        "Arguments.AppSpecification.ContainerEntrypoint",
        "does not exist in the image",
    ),
    (
        "Pipe input mode",
        _edit("Train", _set(["AlgorithmSpecification", "TrainingInputMode"], "Pipe")),
        "Train",
        "Arguments.AlgorithmSpecification.TrainingInputMode",
        "'Pipe' is not supported locally",
    ),
    (
        "a manifest input",
        _edit("Preprocess", _set(["ProcessingInputs", 0, "S3Input", "S3DataType"], "ManifestFile")),
        "Preprocess",
        "Arguments.ProcessingInputs[0].S3Input.S3DataType",
        "'ManifestFile' is not supported locally",
    ),
    (
        "a transform with a join filter",
        _edit("BatchTransform", _set(["DataProcessing"], {"JoinSource": "Input"})),
        "BatchTransform",
        "Arguments.DataProcessing.JoinSource",
        "only the defaults",
    ),
    (
        "a property file the step does not declare",
        _edit(
            "Fail",
            _set(
                ["ErrorMessage"],
                {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Other"}, "Path": "x"}},
            ),
        ),
        "Fail",
        "Arguments.ErrorMessage.PropertyFile",
        "declares no property file 'Other'",
    ),
    (
        "an unknown condition type",
        _edit(
            "Gate",
            lambda s: s["Arguments"]["Conditions"].append(
                {"Type": "Between", "LeftValue": 1, "RightValue": 2}
            ),
        ),
        "Gate",
        "Arguments.Conditions[2].Type",
        "'Between' is not a condition type",
    ),
    # -- keys beside the arguments: an allowlist per level, anything else refused --------------------
    (
        "a retry policy",
        _edit("Train", _key("RetryPolicies", RETRY)),
        "Train",
        "RetryPolicies",
        "remove RetryPolicies from the step, or run the pipeline on SageMaker",
    ),
    (
        "a retry policy in a condition branch",
        _in_branch("Register", "RetryPolicies", RETRY),
        "Register",
        "RetryPolicies",
        "the local engine runs every step once",
    ),
    (
        "an unknown step key",
        _edit("Evaluate", _key("Frobnicate", {"Level": 11})),
        "Evaluate",
        "Frobnicate",
        "is not a step key the local engine knows",
    ),
    (
        "an unknown step key in a condition branch",
        _in_branch("BatchTransform", "Frobnicate", True),
        "BatchTransform",
        "Frobnicate",
        "is not a step key the local engine knows",
    ),
    (
        "an unknown definition key",
        _top("Frobnicate", {"Level": 11}),
        "(pipeline)",
        "Frobnicate",
        "is not a definition key the local engine knows",
    ),
    (
        "another definition format version",
        _top("Version", "2031-01-01"),
        "(pipeline)",
        "Version",
        "reads definition format 2020-12-01",
    ),
    (
        "a CacheConfig that is not one",
        _edit("Train", _key("CacheConfig", {"Enabled": "yes"})),
        "Train",
        "CacheConfig",
        "write {'Enabled': true|false",
    ),
    (
        "a CacheConfig field that does not exist",
        _edit("Train", _key("CacheConfig", {"Enabled": True, "Scope": "global"})),
        "Train",
        "CacheConfig",
        "'Scope' is not a CacheConfig field",
    ),
    (
        "property files on a training step",
        _edit("Train", _key("PropertyFiles", [PROPERTY_FILE])),
        "Train",
        "PropertyFiles",
        "only Processing steps have property files",
    ),
    (
        "a dependency with a trigger",
        _edit("Evaluate", _key("DependsOn", [{"Step": "Train", "Trigger": "Failed"}])),
        "Evaluate",
        "DependsOn[0]",
        "a dependency with a trigger",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_up_front_with_step_and_field(
    case: tuple[str, Callable[[Definition], None], str, str, str],
    dev_stage: Stage,
    definition: Definition,
    tmp_home: LocalHome,
) -> None:
    _, edit, step, field, problem = case
    edit(definition)
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert (error.step, error.field) == (step, field), str(error)
    assert problem in error.problem, str(error)


EXPERIMENT = {"ExperimentName": "penguins", "TrialName": {"Get": "Execution.PipelineExecutionId"}}
NOTED = [
    (
        "step caching",
        _edit("Train", _key("CacheConfig", {"Enabled": True, "ExpireAfter": "P30D"})),
        Note(
            "Train",
            "CacheConfig",
            "step caching is on (ExpireAfter P30D): SageMaker may reuse an earlier run's results; a local "
            "run always computes the step, which is what SageMaker does on a cache miss",
        ),
    ),
    (
        "a pipeline experiment config",
        _top("PipelineExperimentConfig", EXPERIMENT),
        Note(
            "(pipeline)",
            "PipelineExperimentConfig",
            'SageMaker records lineage under {"ExperimentName":"penguins","TrialName":{"Get":'
            '"Execution.PipelineExecutionId"}} in SageMaker Experiments; that changes nothing that runs, '
            "and a local run records nothing there (its record is its execution folder)",
        ),
    ),
    (
        "an MLflow config",
        _top("MlflowConfig", {"MlflowResourceArn": "arn:aws:sagemaker:eu-west-1:1:mlflow-tracking-server/t"}),
        Note("(pipeline)", "MlflowConfig", "in MLflow; that changes nothing that runs"),
    ),
    (
        "a job's experiment config",
        _edit("Evaluate", _set(["ExperimentConfig"], {"TrialComponentDisplayName": "evaluate"})),
        Note("Evaluate", "Arguments.ExperimentConfig", "in SageMaker Experiments"),
    ),
    (
        "an experiment config beside a step",
        _in_branch("Register", "ExperimentConfig", {"TrialComponentDisplayName": "register"}),
        Note("Register", "ExperimentConfig", "in SageMaker Experiments"),
    ),
]


@pytest.mark.parametrize("case", NOTED, ids=[n[0] for n in NOTED])
def test_what_runs_differently_locally_is_accepted_and_noted(
    case: tuple[str, Callable[[Definition], None], Note],
    dev_stage: Stage,
    definition: Definition,
    tmp_home: LocalHome,
) -> None:
    _, edit, expected = case
    edit(definition)
    [note] = engine_for(dev_stage, tmp_home).check(definition)
    assert (note.step, note.field) == (expected.step, expected.field)
    assert expected.text in note.text, note.text
    _nothing_ran(tmp_home)


def test_keys_that_run_as_on_sagemaker_are_accepted_without_a_note(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    for edit in (
        _edit("Train", _key("CacheConfig", {"Enabled": False})),  # SageMaker then runs it every time too
        _edit("Train", _key("RetryPolicies", [])),
        _edit("Train", _key("DisplayName", "Train the model")),
        _edit("Train", _key("Description", "XGBoost on the training split")),
        _top("PipelineExperimentConfig", None),  # what the SDK writes when none is configured
        _top("Metadata", {"owner": "ml-team"}),
    ):
        edit(definition)
    assert engine_for(dev_stage, tmp_home).check(definition) == []


def test_a_run_records_its_notes_in_the_execution_the_step_log_and_the_first_event(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    _edit("Profile", _key("CacheConfig", {"Enabled": True}))(definition)
    _top("PipelineExperimentConfig", EXPERIMENT)(definition)
    events: list[StepEvent] = []
    # No input data: Profile fails at once, which is all this needs (the notes come before).
    execution = engine_for(dev_stage, tmp_home).run(definition, on_event=events.append)

    assert execution.failed_step == "Profile"
    saved = json.loads((execution.path / "execution.json").read_text())
    assert [(n["step"], n["field"]) for n in saved["notes"]] == [
        ("(pipeline)", "PipelineExperimentConfig"),
        ("Profile", "CacheConfig"),
    ]
    assert Execution.load(execution.path).notes == execution.notes
    cache = "CacheConfig: step caching is on: SageMaker may reuse an earlier run's results"
    log = execution.step("Profile").log_path
    assert log is not None and f"[rookery local] note: {cache}" in log.read_text()
    first = next(e for e in events if e.step_name == "Profile")
    assert first.status == "Starting" and first.message is not None
    assert first.message.startswith(f"note: {cache}")


def test_each_job_name_variable_is_accepted_in_the_step_whose_job_it_names(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    _edit("Preprocess", _set(["Environment", "JOB"], {"Get": "Execution.ProcessingJobName"}))(definition)
    _edit("Train", _set(["Environment"], {"JOB": {"Get": "Execution.TrainingJobName"}}))(definition)
    assert engine_for(dev_stage, tmp_home).check(definition) == []
    _nothing_ran(tmp_home)


def test_a_parameter_of_an_unknown_type_is_refused(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    definition["Parameters"][1]["Type"] = "Text"
    with pytest.raises(UnsupportedDefinition) as caught:
        engine_for(dev_stage, tmp_home).check(definition)
    assert (caught.value.step, caught.value.field) == ("(pipeline)", "Parameters[1].Type")
    assert "'Text' is not a pipeline parameter type" in caught.value.problem


def test_a_dependency_cycle_is_refused(dev_stage: Stage, definition: Definition, tmp_home: LocalHome) -> None:
    _edit("Preprocess", lambda s: s.setdefault("DependsOn", []).append("Evaluate"))(definition)
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert error.field == "DependsOn" and "cycle" in error.problem
    assert "Preprocess" in error.problem and "Evaluate" in error.problem


def test_two_steps_with_one_name_are_refused(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    definition["Steps"].append(copy.deepcopy(definition["Steps"][0]))
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert (error.step, error.field) == ("Profile", "Name")


def test_tuning_options_the_engine_cannot_emulate_are_refused(
    dev_stage: Stage, tune_definition: Definition, tmp_home: LocalHome
) -> None:
    definition = copy.deepcopy(tune_definition)
    tune = step_named(definition, "Tune")
    tune["Arguments"]["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto"
    definition["Steps"][[s["Name"] for s in definition["Steps"]].index("Tune")] = tune
    error = _refused(engine_for(dev_stage, tmp_home), definition)
    assert (error.step, error.field) == (
        "Tune",
        "Arguments.HyperParameterTuningJobConfig.TrainingJobEarlyStoppingType",
    )


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Nope": "1"}, "the pipeline has no parameter 'Nope'"),
        ({"AucThreshold": "high"}, "AucThreshold is a Float"),
        ({"AucThreshold": True}, "AucThreshold is a Float"),
        ({"TrainingInstanceCount": 1.5}, "TrainingInstanceCount is an Integer"),
        ({"InputDataUri": "file:///data"}, "must be an s3:// URI"),
        ({"ModelApprovalStatus": "Maybe"}, "must be one of"),
        # R1: the dev stage requires approval; the rendered parameter admits nothing else.
        ({"ModelApprovalStatus": "Approved"}, "must be PendingManualApproval: this stage requires a person"),
    ],
)
def test_parameters_are_checked_before_anything_runs(
    parameters: dict[str, Any], message: str, dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    with pytest.raises(ParameterError, match=message):
        engine_for(dev_stage, tmp_home).run(definition, parameters=parameters)
    _nothing_ran(tmp_home)


def test_a_parameter_value_the_engine_cannot_honour_is_refused_with_the_field(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    error = _refused(engine_for(dev_stage, tmp_home), definition, parameters={"InputDataUri": "s3://"})
    assert (error.step, error.field) == ("Profile", "Arguments.ProcessingInputs[0].S3Input.S3Uri")
    assert "has no bucket name" in error.problem


def test_an_interruption_plan_needs_a_spot_training_step(
    dev_stage: Stage, definition: Definition, tmp_home: LocalHome
) -> None:
    _edit("Train", _set(["EnableManagedSpotTraining"], False))(definition)
    with pytest.raises(LocalEngineError, match="only spot jobs are interrupted"):
        engine_for(dev_stage, tmp_home).run(definition, interrupt_training=InterruptPlan(after_seconds=1))
    _nothing_ran(tmp_home)


def test_an_interruption_plan_needs_a_trigger() -> None:
    with pytest.raises(ValueError, match="needs a trigger"):
        InterruptPlan()


def test_the_image_map_refuses_images_it_does_not_know(tmp_path: Path, definition: Definition) -> None:
    engine = LocalEngine(
        LocalHome(tmp_path), ImageMap.project("123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1")
    )
    with pytest.raises(UnsupportedDefinition) as caught:
        engine.check(definition)
    assert caught.value.step == "Profile" and caught.value.field == "Arguments.AppSpecification.ImageUri"
