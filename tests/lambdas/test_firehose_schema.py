"""The transform's schema parser agrees with stage.DatasetSchema; bad configuration fails early."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from firehose_transform.schema import METADATA_COLUMNS, DatasetSchema, SchemaError, parse_schema
from firehose_transform.settings import ConfigurationError, load_settings
from stage import DatasetSchema as ConfigSchema
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
def test_every_stage_schema_parses_to_the_same_columns(stage: str) -> None:
    config = load_stage(stage).dataset
    parsed = parse_schema(config.model_dump_json())
    assert parsed == DatasetSchema(
        name=config.name,
        target=config.target,
        positive_class=config.positive_class,
        numeric=config.numeric,
        categorical=config.categorical,
        id_column=config.id_column,
    )
    assert parsed.columns == config.columns


def test_id_column_leads_and_target_trails() -> None:
    schema = parse_schema(json.dumps({**BASE, "id_column": "penguin_id"}))
    assert schema.columns == ("penguin_id", "bill_length_mm", "body_mass_g", "species", "island", "sex")


INVALID = {
    "target among the features": ({"numeric": ["bill_length_mm", "sex"]}, "also a feature"),
    "no features": ({"numeric": [], "categorical": []}, "no feature columns"),
    "numeric and categorical": ({"categorical": ["species", "body_mass_g"]}, "both numeric and categorical"),
    "id column is the target": ({"id_column": "sex"}, "id_column 'sex'"),
    "upper-case column": ({"numeric": ["Bill_Length"]}, "lower-case"),
    "column listed twice": ({"categorical": ["species", "species"]}, "lists a column twice"),
    "empty positive class": ({"positive_class": ""}, "'positive_class'"),
    "unknown field": ({"label": "sex"}, "unknown fields ['label']"),
    "columns not a list": ({"numeric": "bill_length_mm"}, "must be a list of column names"),
}


@pytest.mark.parametrize(("change", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_schemas_are_rejected_by_both_parsers(change: dict[str, Any], message: str) -> None:
    raw = {**BASE, **change}
    with pytest.raises(ValidationError):
        ConfigSchema.model_validate(raw)
    with pytest.raises(SchemaError, match=re.escape(message)):
        parse_schema(json.dumps(raw))


def test_missing_target_is_named() -> None:
    raw = {k: v for k, v in BASE.items() if k != "target"}
    with pytest.raises(SchemaError, match=r"missing fields \['target'\]"):
        parse_schema(json.dumps(raw))


@pytest.mark.parametrize("column", METADATA_COLUMNS)
def test_a_column_named_like_ingest_metadata_is_rejected(column: str) -> None:
    with pytest.raises(SchemaError, match=f"collide with the ingest metadata.*{column}"):
        parse_schema(json.dumps({**BASE, "numeric": [column]}))


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object, got list")],
)
def test_unparseable_schema_text_is_named(text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_schema(text)


def test_missing_schema_variable_names_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"ROOKERY_DATASET_SCHEMA is not set.*model_dump_json"):
        load_settings({})


def test_bad_schema_variable_says_which_variable_and_what_is_wrong() -> None:
    with pytest.raises(ConfigurationError, match="ROOKERY_DATASET_SCHEMA is invalid: target column 'sex'"):
        load_settings({"ROOKERY_DATASET_SCHEMA": json.dumps({**BASE, "categorical": ["sex"]})})


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
