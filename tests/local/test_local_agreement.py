"""``rookery pipeline validate`` and the local engine read a definition the same way: for any
reference, both report the same problem (step, field, what is wrong) or neither does."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from local_testing import engine_for

from emulators.sagemaker import LocalEngine, LocalHome, UnsupportedDefinition
from pipelines import validate_definition
from pipelines.definition import steps_by_name
from pipelines.reading import read_definition
from pipelines.reading.variables import EXECUTION_VARIABLES
from stage import Stage

Definition = dict[str, Any]
FIELD = "Arguments.Environment.PROBE"

# Parts of property paths: members of the Describe* shapes, list indexes and keys, and misspellings.
MEMBERS = (
    "ModelArtifacts",
    "S3ModelArtifacts",
    "ProcessingOutputConfig",
    "Outputs",
    "S3Output",
    "S3Uri",
    "FinalMetricDataList",
    "Value",
    "ModelName",
    "ModelPackageArn",
    "Outcome",
    "TrainingJobName",
    "Nope",
)
INDEXES = ("[0]", "['train']", "['evaluation']")
STEPS = (
    "Preprocess",
    "Train",
    "Evaluate",
    "Gate",
    "Register",
    "CreateModel",
    "BatchTransform",
    "Fail",
    "Nope",
)
# Evaluate is a Processing step: it has a ProcessingJobName, and the engine binds TrainingJobName only in
# Training steps (a local limit, refused on its own; see test_local_refusals).
VARIABLES = [v.name for v in EXECUTION_VARIABLES.values() if v.job_of in (None, "Processing")]


def _property_path() -> st.SearchStrategy[str]:
    part = st.one_of(
        st.sampled_from(MEMBERS).map(lambda m: f".{m}"),
        st.sampled_from(INDEXES),
    )
    return st.tuples(st.sampled_from(MEMBERS), st.lists(part, max_size=3)).map(lambda t: t[0] + "".join(t[1]))


def _references() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["AucThreshold", "InputDataUri", "Nope"]).map(lambda n: f"Parameters.{n}"),
        st.sampled_from([*VARIABLES, "Nope"]).map(lambda n: f"Execution.{n}"),
        st.tuples(st.sampled_from(STEPS), _property_path()).map(lambda t: f"Steps.{t[0]}.{t[1]}"),
        st.sampled_from(STEPS).map(lambda s: f"Steps.{s}.PropertyFiles.EvaluationReport"),
        st.sampled_from(["Pipeline.Name", "Steps", "Steps.Train!"]),
    )


def _expressions() -> st.SearchStrategy[Any]:
    get = _references().map(lambda r: {"Get": r})
    json_get = st.sampled_from(STEPS).map(
        lambda s: {
            "Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{s}.PropertyFiles.EvaluationReport"}, "Path": "a"}
        }
    )
    single = st.one_of(get, json_get, st.just({"Std:Concat": ["a"]}), st.just({"Get": 1}))
    return st.one_of(
        single, st.lists(single, min_size=1, max_size=3).map(lambda v: {"Std:Join": {"On": "/", "Values": v}})
    )


def _probe(definition: Definition, expression: Any) -> Definition:
    probed = copy.deepcopy(definition)
    steps_by_name(probed)["Evaluate"]["Arguments"]["Environment"] = {"PROBE": expression}
    return probed


@pytest.fixture(scope="module")
def engine(dev_stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> LocalEngine:
    """An engine that only checks (a check writes nothing under its home)."""
    return engine_for(dev_stage, LocalHome(tmp_path_factory.mktemp("home")))


@given(expression=_expressions())
@settings(max_examples=150, deadline=None)
def test_validate_and_the_engine_report_the_same_problem_for_any_reference(
    expression: Any, dev_train_definition: Definition, engine: LocalEngine
) -> None:
    definition = _probe(dev_train_definition, expression)
    problems = read_definition(definition)
    # Each problem is in the probed field, or is the cycle a property read of a later step makes.
    assert all(p.field.startswith(FIELD) or p.field == "DependsOn" for p in problems), problems
    findings = [
        (f.step, f.field, f.message, f.fix) for f in validate_definition(definition) if f.control == "REF"
    ]
    assert findings == [(p.step, p.field, p.what, p.fix) for p in problems]
    if not problems:
        engine.check(definition)
        return
    with pytest.raises(UnsupportedDefinition) as refused:
        engine.check(definition)
    first = problems[0]
    assert (refused.value.step, refused.value.field) == (first.step, first.field)
    assert first.what in refused.value.problem and first.fix in refused.value.problem


@pytest.mark.parametrize("broken", [False, True])
def test_the_generated_references_are_both_sound_and_broken(
    broken: bool, dev_train_definition: Definition
) -> None:
    """A property test that only ever saw one outcome would prove little."""
    found = find(
        _expressions(),
        lambda e: bool(read_definition(_probe(dev_train_definition, e))) is broken,
        settings=settings(database=None, deadline=None),
    )
    assert bool(read_definition(_probe(dev_train_definition, found))) is broken
