"""The transform's configuration: the dataset schema variable (read by the contract) and its own rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firehose_transform.settings import ConfigurationError, load_settings
from rookery_contracts.ingest import METADATA_COLUMNS
from rookery_contracts.schema import parse_schema
from stage import available_stages, load_stage

BASE: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm", "body_mass_g"],
    "categorical": ["species", "island"],
    "id_column": None,
}


@pytest.mark.parametrize("stage", available_stages())
def test_every_stage_schema_is_the_functions_schema(stage: str) -> None:
    config = load_stage(stage).dataset
    settings = load_settings({"ROOKERY_DATASET_SCHEMA": config.to_json()})
    assert settings.schema == config == parse_schema(config.to_json())
    assert settings.schema.columns == config.columns


@pytest.mark.parametrize("column", METADATA_COLUMNS)
def test_a_column_named_like_ingest_metadata_is_rejected(column: str) -> None:
    with pytest.raises(ConfigurationError, match=f"collide with the ingest metadata.*{column}"):
        load_settings({"ROOKERY_DATASET_SCHEMA": json.dumps({**BASE, "numeric": [column]})})


def test_missing_schema_variable_names_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"ROOKERY_DATASET_SCHEMA is not set.*to_json\(\)"):
        load_settings({})


def test_bad_schema_variable_says_which_variable_and_what_is_wrong() -> None:
    with pytest.raises(
        ConfigurationError, match="ROOKERY_DATASET_SCHEMA is invalid: target = 'sex': target column 'sex'"
    ):
        load_settings({"ROOKERY_DATASET_SCHEMA": json.dumps({**BASE, "categorical": ["sex"]})})
    with pytest.raises(ConfigurationError, match="ROOKERY_DATASET_SCHEMA is invalid: not valid JSON"):
        load_settings({"ROOKERY_DATASET_SCHEMA": "{not json"})


def test_powertools_names_default_and_can_be_overridden(dataset_schema_json: str) -> None:
    defaults = load_settings({"ROOKERY_DATASET_SCHEMA": dataset_schema_json})
    assert (defaults.service, defaults.metrics_namespace) == ("firehose_transform", "Rookery")
    custom = load_settings(
        {
            "ROOKERY_DATASET_SCHEMA": dataset_schema_json,
            "POWERTOOLS_SERVICE_NAME": "ingest",
            "POWERTOOLS_METRICS_NAMESPACE": "Rookery/dev",
        }
    )
    assert (custom.service, custom.metrics_namespace) == ("ingest", "Rookery/dev")
