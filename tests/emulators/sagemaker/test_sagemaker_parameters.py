"""Execution parameters: the definition's defaults with the caller's overrides, typed as declared
(``emulators/sagemaker/pipeline/parameters.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.sagemaker.pipeline.parameters import resolve_parameters
from pipelines.parameters import ParameterError

DEFINITION = {
    "Parameters": [
        {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://raw/penguins/"},
        {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.85},
        {"Name": "TrainingInstanceCount", "Type": "Integer", "DefaultValue": 1},
        {"Name": "Mode", "Type": "String", "DefaultValue": "a", "EnumValues": ["a", "b"]},
        {"Name": "Required", "Type": "String"},
    ],
    "Steps": [],
}


def test_parameters_are_typed_as_declared() -> None:
    values = resolve_parameters(
        DEFINITION, {"Required": "x", "AucThreshold": "0.9", "TrainingInstanceCount": 1}
    )
    assert values == {
        "InputDataUri": "s3://raw/penguins/",
        "AucThreshold": 0.9,
        "TrainingInstanceCount": 1,
        "Mode": "a",
        "Required": "x",
    }
    assert isinstance(values["AucThreshold"], float) and isinstance(values["TrainingInstanceCount"], int)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "parameter Required has no default value; pass it"),
        ({"Required": "x", "Mode": "c"}, "Mode must be one of a, b"),
        ({"Required": "x", "TrainingInstanceCount": "two"}, "TrainingInstanceCount is an Integer"),
        ({"Required": "x", "TrainingInstanceCount": 0}, "must be at least 1"),
    ],
)
def test_bad_parameters_name_the_parameter_and_the_fix(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        resolve_parameters(DEFINITION, given)
