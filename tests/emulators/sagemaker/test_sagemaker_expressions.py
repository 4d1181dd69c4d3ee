"""Pipeline expressions as SageMaker evaluates them: ``Get`` into Describe* shapes, ``Std:Join``,
``Std:JsonGet`` of a property file, and conditions (``emulators/sagemaker/pipeline/expressions.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.sagemaker.pipeline.expressions import ExpressionError, Scope, lookup, to_text
from pipelines.reading.paths import tokens


def _scope(properties: dict[str, Any] | None = None, files: dict[str, Any] | None = None) -> Scope:
    def step(name: str) -> Any:
        if properties is None or name not in properties:
            raise ExpressionError(f"no step {name}")
        return properties[name]

    return Scope(
        {"Threshold": 0.85, "Count": 1, "Name": "x", "Flag": True},
        {"PipelineExecutionId": "abc123def456"},
        step,
        lambda step_name, file_name: (files or {})[f"{step_name}.{file_name}"],
    )


def test_a_keyed_index_picks_the_list_member_by_its_name() -> None:
    value = {"FinalMetricDataList": [{"MetricName": "a", "Value": 1.0}, {"MetricName": "b", "Value": 2.0}]}
    assert lookup(value, tokens("FinalMetricDataList['b'].Value"), "x") == 2.0
    with pytest.raises(ExpressionError, match=r"FinalMetricDataList\['c'\] does not exist"):
        lookup(value, tokens("FinalMetricDataList['c'].Value"), "x")


def test_join_writes_values_as_the_service_does() -> None:
    scope = _scope()
    joined = scope.resolve(
        {
            "Std:Join": {
                "On": "/",
                "Values": [
                    "s3://b",
                    {"Get": "Execution.PipelineExecutionId"},
                    {"Get": "Parameters.Threshold"},
                    {"Get": "Parameters.Count"},
                    {"Get": "Parameters.Flag"},
                ],
            }
        }
    )
    assert joined == "s3://b/abc123def456/0.85/1/true"
    assert [to_text(v) for v in (1.0, 0.1, None, "a")] == ["1.0", "0.1", "null", "a"]


def test_json_get_reads_a_property_file_path() -> None:
    scope = _scope(files={"Evaluate.Report": {"metrics": {"auc": {"value": 0.91}}, "list": [{"x": 3}]}})
    get = {"Get": "Steps.Evaluate.PropertyFiles.Report"}
    assert scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "metrics.auc.value"}}) == 0.91
    assert scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "list[0].x"}}) == 3
    with pytest.raises(ExpressionError, match=r"metrics\.recall does not exist"):
        scope.resolve({"Std:JsonGet": {"PropertyFile": get, "Path": "metrics.recall.value"}})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "Equals", "LeftValue": 1, "RightValue": 1.0}, True),
        ({"Type": "Equals", "LeftValue": "1", "RightValue": 1}, False),
        ({"Type": "Equals", "LeftValue": True, "RightValue": 1}, False),
        (
            {
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": 0.85,
                "RightValue": {"Get": "Parameters.Threshold"},
            },
            True,
        ),
        ({"Type": "GreaterThan", "LeftValue": 0.85, "RightValue": {"Get": "Parameters.Threshold"}}, False),
        ({"Type": "LessThan", "LeftValue": 2, "RightValue": 10}, True),
        ({"Type": "LessThanOrEqualTo", "LeftValue": 10, "RightValue": 2}, False),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["y", "x"]}, True),
        ({"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                    {"Type": "Equals", "LeftValue": "a", "RightValue": "a"},
                ],
            },
            True,
        ),
    ],
)
def test_conditions_compare_as_sagemaker_does(condition: dict[str, Any], expected: bool) -> None:
    assert _scope().condition(condition) is expected


def test_ordering_a_text_value_is_an_error_naming_it() -> None:
    with pytest.raises(
        ExpressionError, match=r"GreaterThan compares numbers, but its LeftValue is 'high' \(str\)"
    ):
        _scope().condition({"Type": "GreaterThan", "LeftValue": "high", "RightValue": 1})
