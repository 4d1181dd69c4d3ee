"""The dataset schema's one definition: its rules, its JSON, and every problem named by field, value and fix.

The stage loader, the Firehose transform and the preprocess job all validate through it
(tests/config, tests/lambdas and tests/containers check how each reports a problem).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rookery_contracts.schema import (
    FIELDS,
    DatasetSchema,
    Problem,
    SchemaError,
    parse_schema,
    schema_from_mapping,
)
from stage import available_stages, load_stage

BASE: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm", "body_mass_g"],
    "categorical": ["species", "island"],
    "id_column": None,
}


def _problems(raw: object) -> list[Problem]:
    with pytest.raises(SchemaError) as raised:
        schema_from_mapping(raw)
    return list(raised.value.problems)


@pytest.mark.parametrize("stage", available_stages())
def test_every_stage_schema_travels_as_json_and_back(stage: str) -> None:
    config = load_stage(stage).dataset
    assert isinstance(config, DatasetSchema)
    assert parse_schema(config.to_json()) == config
    assert json.loads(config.to_json()) == config.to_dict()
    assert list(config.to_dict()) == list(FIELDS)


def test_the_json_is_compact_and_keeps_non_ascii_class_names() -> None:
    schema = DatasetSchema(name="loans", target="paid", positive_class="nein, säumig", numeric=("income",))
    assert schema.to_json() == (
        '{"name":"loans","target":"paid","positive_class":"nein, säumig","numeric":["income"],'
        '"categorical":[],"id_column":null,"group_column":null}'
    )


def test_columns_lead_with_the_id_and_end_with_the_target() -> None:
    schema = schema_from_mapping({**BASE, "id_column": "penguin_id"})
    assert schema.features == ("bill_length_mm", "body_mass_g", "species", "island")
    assert schema.columns == ("penguin_id", *schema.features, "sex")


def test_a_group_column_is_carried_after_the_id_and_once_when_it_is_the_id() -> None:
    schema = schema_from_mapping({**BASE, "id_column": "penguin_id", "group_column": "nest"})
    assert schema.columns == ("penguin_id", "nest", *schema.features, "sex")
    assert parse_schema(schema.to_json()) == schema
    same = schema_from_mapping({**BASE, "id_column": "penguin_id", "group_column": "penguin_id"})
    assert same.columns == ("penguin_id", *schema.features, "sex")


def test_lists_become_tuples_so_schemas_compare_and_hash() -> None:
    schema = DatasetSchema("penguins", "sex", "female", ["body_mass_g"], ["island"])  # type: ignore[arg-type]
    assert schema.numeric == ("body_mass_g",) and schema.categorical == ("island",)
    assert schema == DatasetSchema("penguins", "sex", "female", ("body_mass_g",), ("island",))
    assert hash(schema) == hash(DatasetSchema("penguins", "sex", "female", ("body_mass_g",), ("island",)))


INVALID = {
    "bad name": ({"name": "Pen guins"}, "name", "(a Glue table and S3 prefix); e.g. 'penguins'"),
    "a name with a trailing newline": ({"name": "penguins\n"}, "name", "lower-case letters, digits and '_'"),
    "upper-case target": ({"target": "Sex"}, "target", "lower-case letters, digits and '_'"),
    "bad id column": ({"id_column": "Id"}, "id_column", "lower-case letters, digits and '_'"),
    "upper-case feature": (
        {"numeric": ["Bill_Length"]},
        "numeric",
        "column names ['Bill_Length'] must be lower-case letters, digits and '_'; rename them",
    ),
    "columns not a list": (
        {"numeric": "bill_length_mm"},
        "numeric",
        'must be a list of column names, e.g. ["',
    ),
    "a column that is no string": ({"categorical": [1]}, "categorical", "must be a list of column names"),
    "column listed twice": ({"categorical": ["species", "species"]}, "categorical", "list each feature once"),
    "empty positive class": ({"positive_class": ""}, "positive_class", "non-empty name of the class"),
    "positive class not text": ({"positive_class": 1}, "positive_class", "non-empty name of the class"),
    "target among the features": (
        {"numeric": ["bill_length_mm", "sex"]},
        "target",
        "target column 'sex' is also listed as a feature; remove it from 'numeric'/'categorical'",
    ),
    "no features": ({"numeric": [], "categorical": []}, None, "no feature columns: list at least one column"),
    "numeric and categorical": (
        {"categorical": ["species", "body_mass_g"]},
        None,
        "columns ['body_mass_g'] are both numeric and categorical; keep each in one list",
    ),
    "id column is the target": (
        {"id_column": "sex"},
        "id_column",
        "id_column 'sex' is also a feature or the target",
    ),
    "bad group column": ({"group_column": "Nest"}, "group_column", "lower-case letters, digits and '_'"),
    "group column is a feature": (
        {"group_column": "island"},
        "group_column",
        "group_column 'island' is also a feature or the target; name the column that identifies the entity",
    ),
    "unknown field": ({"label": "sex"}, "label", "unknown field; remove it or check its spelling"),
}


@pytest.mark.parametrize(("change", "field", "message"), INVALID.values(), ids=INVALID.keys())
def test_each_problem_names_its_field_its_value_and_the_fix(
    change: dict[str, Any], field: str | None, message: str
) -> None:
    raw = {**BASE, **change}
    [problem] = _problems(raw)
    assert problem.field == field and message in problem.message
    if field is not None:
        assert problem.value == raw[field]
        assert str(problem).startswith(f"{field} = {raw[field]!r}: ")
    with pytest.raises(SchemaError, match=re.escape(message)):
        parse_schema(json.dumps(raw))


def test_every_field_problem_is_reported_at_once_and_consistency_only_after() -> None:
    problems = _problems({**BASE, "name": "X", "numeric": ["Bad"], "categorical": ["sex"]})
    assert [p.field for p in problems] == ["name", "numeric"]
    problems = _problems({**BASE, "numeric": ["sex", "species"], "id_column": "island"})
    assert [p.field for p in problems] == ["target", None, "id_column"]


def test_missing_and_unknown_fields_are_named() -> None:
    problems = _problems({k: v for k, v in BASE.items() if k not in ("target", "positive_class")})
    assert [str(p) for p in problems] == [
        "target: required field is missing; add it",
        "positive_class: required field is missing; add it",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "the dataset schema must be an object with fields ['name', 'target', "),
        ('"penguins"', "not str"),
    ],
)
def test_text_that_is_no_schema_object_is_named(text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=re.escape(message)):
        parse_schema(text)


def test_constructing_a_schema_in_code_validates_it_too() -> None:
    with pytest.raises(SchemaError, match="no feature columns"):
        DatasetSchema(name="penguins", target="sex", positive_class="female")


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


@given(
    name=_names,
    columns=st.lists(_names, min_size=2, max_size=8, unique=True),
    split=st.integers(min_value=0, max_value=8),
    with_id=st.booleans(),
    positive=st.text(min_size=1, max_size=20),
)
def test_property_every_valid_schema_survives_its_json(
    name: str, columns: list[str], split: int, with_id: bool, positive: str
) -> None:
    target, *rest = columns
    id_column = rest.pop() if with_id and len(rest) > 1 else None
    cut = min(split, len(rest))
    schema = DatasetSchema(name, target, positive, tuple(rest[:cut]), tuple(rest[cut:]), id_column)
    assert parse_schema(schema.to_json()) == schema
    assert set(schema.columns) == {target, *rest, *((id_column,) if id_column else ())}
