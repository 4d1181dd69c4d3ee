"""``pipelines.reading``: the one reader of a definition (references, functions, the step graph, images)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pipeline_testing import RENDER_GROUP

from pipelines import PipelineResources, validate_definition
from pipelines.definition import dig, field_path, iter_steps, steps_by_name
from pipelines.reading import PIPELINE, Problem, read_definition
from pipelines.reading.containers import image_fields, training_job_definitions
from pipelines.reading.graph import STEP_NAME
from pipelines.reading.paths import tokens
from pipelines.reading.variables import EXECUTION_VARIABLES, PARAMETER_TYPES

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)

Definition = dict[str, Any]
Edit = Callable[[Definition], None]


def _args(definition: Definition, step: str) -> Any:
    return steps_by_name(definition)[step]["Arguments"]


def _read(definition: Definition, edit: Edit) -> list[Problem]:
    changed = copy.deepcopy(definition)
    edit(changed)
    return read_definition(changed)


def _environment(step: str, value: Any) -> Edit:
    def edit(definition: Definition) -> None:
        _args(definition, step).setdefault("Environment", {})["PROBE"] = value

    return edit


def test_the_rendered_definitions_read_without_problems(definition: Definition) -> None:
    assert read_definition(definition) == []


# -- execution variables ---------------------------------------------------------------------------
def test_the_execution_variables_are_the_sdks_and_strings_at_run_time() -> None:
    from pipelines._sdk import sdk_environment  # noqa: PLC0415 - the SDK import: render worker only

    with sdk_environment():
        from sagemaker.core.workflow.execution_variables import (  # noqa: PLC0415
            ExecutionVariable,
            ExecutionVariables,
        )
    sdk = [v for v in vars(ExecutionVariables).values() if isinstance(v, ExecutionVariable)]
    assert [v.name for v in sdk] == list(EXECUTION_VARIABLES)
    assert all(v.to_string() is v for v in sdk), "the SDK treats every execution variable as a string"
    assert {v.value_type for v in EXECUTION_VARIABLES.values()} == {"String"}
    assert {v.value_type for v in EXECUTION_VARIABLES.values()} <= set(PARAMETER_TYPES)
    assert {v.job_of for v in EXECUTION_VARIABLES.values()} == {None, "Training", "Processing"}


@pytest.mark.parametrize("variable", list(EXECUTION_VARIABLES))
def test_every_execution_variable_is_a_reference_anywhere(
    variable: str, train_definition: Definition
) -> None:
    for step in ("Preprocess", "Train"):
        assert _read(train_definition, _environment(step, {"Get": f"Execution.{variable}"})) == []


def test_an_unknown_execution_variable_is_a_problem_naming_the_known_ones(
    train_definition: Definition,
) -> None:
    [problem] = _read(train_definition, _environment("Preprocess", {"Get": "Execution.JobName"}))
    assert (problem.step, problem.field) == ("Preprocess", "Arguments.Environment.PROBE")
    assert problem.what == "refers to unknown execution variable 'JobName'"
    assert all(name in problem.fix for name in EXECUTION_VARIABLES)


def test_an_execution_variable_is_typed_as_a_string_for_the_request_shapes(
    train_definition: Definition,
) -> None:
    broken = copy.deepcopy(train_definition)
    _args(broken, "Train")["ResourceConfig"]["InstanceCount"] = {"Get": "Execution.PipelineExecutionId"}
    shape = [f for f in validate_definition(broken) if f.control == "SHAPE"]
    assert [(f.step, f.field) for f in shape] == [("Train", "ResourceConfig.InstanceCount")]
    assert "Invalid type for parameter ResourceConfig.InstanceCount" in shape[0].message


# -- references, property files and functions -------------------------------------------------------
JSON_GET = {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}, "Path": "a.b"}

PROBLEMS: list[tuple[str, Any, str, str]] = [
    # (case, the value put in Preprocess/Register Environment, field suffix, what the problem says)
    ("a Get of a number", {"Get": 7}, "", "Get needs a string reference, not 7"),
    ("an unknown kind", {"Get": "Pipeline.Name"}, "", "'Pipeline' is an unknown kind of reference"),
    ("a malformed step reference", {"Get": "Steps.Train!"}, "", "cannot read '!'"),
    ("an unknown function", {"Std:Concat": ["a"]}, "", "function 'Std:Concat' is not supported"),
    ("a Join without values", {"Std:Join": {"On": "/"}}, "", "Std:Join needs {'On': str, 'Values': [...]}"),
    ("a JsonGet without a path", {"Std:JsonGet": {"PropertyFile": JSON_GET["PropertyFile"]}}, "", "Path"),
    (
        "a JsonGet of a file and an S3 object",
        {"Std:JsonGet": {**JSON_GET, "S3Uri": "s3://b/k.json"}},
        "",
        "either a PropertyFile or an S3Uri",
    ),
    (
        "a JsonGet of something that is not a property file",
        {"Std:JsonGet": {"PropertyFile": "EvaluationReport", "Path": "a"}},
        ".PropertyFile",
        "'EvaluationReport' is not a property file",
    ),
    (
        "a JsonGet of a step property",
        {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.ProcessingJobName"}, "Path": "a"}},
        ".PropertyFile",
        "is not Steps.<step>.PropertyFiles.<name>",
    ),
    (
        "a JsonGet of an unknown step",
        {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Nope.PropertyFiles.X"}, "Path": "a"}},
        ".PropertyFile",
        "refers to unknown step in 'Steps.Nope.PropertyFiles.X'",
    ),
    (
        "a property file read with a bare Get",
        {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
        "",
        "reads property file 'Steps.Evaluate.PropertyFiles.EvaluationReport' with a Get",
    ),
    (
        "a condition's property other than its outcome",
        {"Get": "Steps.Gate.Result"},
        "",
        "exposes only 'Outcome'",
    ),
    (
        "a step's own property",
        {"Get": "Steps.Register.ModelPackageArn"},
        "",
        "cannot read its own properties",
    ),
]


@pytest.mark.parametrize("case", PROBLEMS, ids=[c[0] for c in PROBLEMS])
def test_each_expression_problem_names_the_field_and_the_fix(
    case: tuple[str, Any, str, str], train_definition: Definition
) -> None:
    _, value, suffix, what = case
    [problem] = _read(train_definition, _environment("Register", value))
    assert problem.step == "Register"
    assert problem.field == f"Arguments.Environment.PROBE{suffix}"
    assert what in problem.what, problem
    assert problem.fix


@pytest.mark.parametrize(
    "value",
    [
        {"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", "k.json"]}}, "Path": "a"}},
        {"Get": "Steps.Gate.Outcome"},
        {"Std:Join": {"On": "", "Values": [{"Std:JsonGet": JSON_GET}, {"Get": "Parameters.AucThreshold"}]}},
        {"Get": "Steps.Train.FinalMetricDataList['validation:auc'].Value"},
    ],
)
def test_what_sagemaker_resolves_is_no_problem(value: Any, train_definition: Definition) -> None:
    assert _read(train_definition, _environment("Register", value)) == []


def test_the_problems_of_nested_expressions_are_each_reported(train_definition: Definition) -> None:
    joined = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.A"}, {"Get": "Execution.B"}]}}
    problems = _read(train_definition, _environment("Preprocess", joined))
    assert [(p.field, p.what) for p in problems] == [
        ("Arguments.Environment.PROBE.Std:Join.Values[0]", "refers to undeclared parameter 'A'"),
        ("Arguments.Environment.PROBE.Std:Join.Values[1]", "refers to unknown execution variable 'B'"),
    ]


def test_a_parameter_of_an_unknown_type_is_a_problem_of_the_pipeline(train_definition: Definition) -> None:
    def edit(definition: Definition) -> None:
        definition["Parameters"][1]["Type"] = "Text"

    [problem] = _read(train_definition, edit)
    assert (problem.step, problem.field) == (PIPELINE, "Parameters[1].Type")
    assert problem.what == "'Text' is not a pipeline parameter type"


# -- the step graph ----------------------------------------------------------------------------------
def _depends(step: str, *on: str) -> Edit:
    def edit(definition: Definition) -> None:
        target: dict[str, Any] = next(s for s in iter_steps(definition["Steps"]) if s["Name"] == step)
        target.setdefault("DependsOn", []).extend(on)

    return edit


def test_a_dependency_on_an_unknown_step_is_a_problem(train_definition: Definition) -> None:
    [problem] = _read(train_definition, _depends("Train", "Nope"))
    assert (problem.step, problem.field, problem.what) == (
        "Train",
        "DependsOn",
        "depends on unknown step 'Nope'",
    )


@pytest.mark.parametrize(
    "edit",
    [
        _depends("Preprocess", "Evaluate"),
        # A property read is a dependency too: Preprocess would wait for a step in the gate's branch.
        _environment("Preprocess", {"Get": "Steps.CreateModel.ModelName"}),
    ],
    ids=["DependsOn", "a property read"],
)
def test_a_cycle_is_a_problem_naming_its_steps(edit: Edit, train_definition: Definition) -> None:
    problems = _read(train_definition, edit)
    assert problems and {p.field for p in problems} == {"DependsOn"}
    assert "cycle: " in problems[0].what and "Preprocess" in problems[0].what


def test_step_names_are_unique_and_well_formed(train_definition: Definition) -> None:
    def duplicate(definition: Definition) -> None:
        train = next(s for s in definition["Steps"] if s["Name"] == "Train")
        definition["Steps"].append(copy.deepcopy(train))

    def rename(definition: Definition) -> None:
        definition["Steps"][0]["Name"] = "Pre process"

    [twice] = _read(train_definition, duplicate)
    assert (twice.step, twice.field, twice.what) == ("Train", "Name", "two steps have this name")
    problems = _read(train_definition, rename)
    assert (problems[0].step, problems[0].field) == ("Pre process", "Steps[0].Name")
    assert not STEP_NAME.match("Pre process") and STEP_NAME.match("Pre-process_2")


# -- images ------------------------------------------------------------------------------------------
def test_image_fields_find_every_image_the_rendered_steps_run(
    definition: Definition, dev_resources: PipelineResources
) -> None:
    found = {
        (step["Name"], field_path(*f.image)): (dig(step["Arguments"], *f.image), f.command)
        for step in iter_steps(definition["Steps"])
        for f in image_fields(step)
    }
    training = "Train" if "Train" in steps_by_name(definition) else "Tune"
    prefix = "" if training == "Train" else "TrainingJobDefinition."
    image = dev_resources.image_uri
    assert found == {
        ("Profile", "AppSpecification.ImageUri"): (image, ""),
        ("Fit", "AppSpecification.ImageUri"): (image, ""),
        ("Preprocess", "AppSpecification.ImageUri"): (image, ""),
        (training, f"{prefix}AlgorithmSpecification.TrainingImage"): (image, "train"),
        ("Evaluate", "AppSpecification.ImageUri"): (image, ""),
        ("Baseline", "AppSpecification.ImageUri"): (image, ""),
        ("Register", "InferenceSpecification.Containers[0].Image"): (image, "serve"),
        ("CreateModel", "PrimaryContainer.Image"): (image, "serve"),
    }


def test_image_fields_of_several_containers_and_training_job_definitions() -> None:
    model = {"Type": "Model", "Arguments": {"Containers": [{"Image": "a"}, {"Image": "b"}]}}
    assert [field_path(*f.image) for f in image_fields(model)] == [
        "Containers[0].Image",
        "Containers[1].Image",
    ]
    tuning = {"TrainingJobDefinitions": [{"DefinitionName": "a"}, {"DefinitionName": "b"}]}
    assert [path for path, _ in training_job_definitions(tuning)] == [
        ("TrainingJobDefinitions", 0),
        ("TrainingJobDefinitions", 1),
    ]
    [(path, job)] = training_job_definitions({})
    assert (path, job) == (("TrainingJobDefinition",), {}), "the definition SageMaker requires"
    fields = image_fields({"Type": "Tuning", "Arguments": tuning})
    assert [field_path(*f.entrypoint) for f in fields if f.entrypoint] == [
        "TrainingJobDefinitions[0].AlgorithmSpecification.ContainerEntrypoint",
        "TrainingJobDefinitions[1].AlgorithmSpecification.ContainerEntrypoint",
    ]


def test_property_paths_parse_like_the_sdk_writes_them() -> None:
    assert tokens("ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "ProcessingOutputConfig",
        "Outputs",
        ("train",),
        "S3Output",
        "S3Uri",
    ]
    assert tokens("TrainingJobSummaries[0].TrainingJobName") == ["TrainingJobSummaries", 0, "TrainingJobName"]
    with pytest.raises(ValueError, match="cannot read"):
        tokens("A..B")
