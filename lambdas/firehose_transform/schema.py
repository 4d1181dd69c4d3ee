"""The dataset schema as this function sees it, parsed from the JSON of ``stage.DatasetSchema``.

The Lambda ships alone and cannot import ``rookery``, so it re-validates the same rules here
(a test keeps both in agreement) and adds one of its own: no dataset column may be named like
the ingest metadata the transform stamps on every record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The same column rule as stage (Glue and Athena fold case, so lower case only).
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")

# Ingest metadata stamped on every valid record (interface: the Glue raw table may declare them).
INGEST_TS_COLUMN = "_ingest_ts"
RECORD_ID_COLUMN = "_firehose_record_id"
METADATA_COLUMNS = (INGEST_TS_COLUMN, RECORD_ID_COLUMN)

_FIELDS = ("name", "target", "positive_class", "numeric", "categorical", "id_column")
_REQUIRED = ("name", "target", "positive_class")


class SchemaError(ValueError):
    """The dataset schema handed to the function is unusable; the message names the field and the fix."""


@dataclass(frozen=True)
class DatasetSchema:
    """Columns of one tabular binary-classification dataset (mirror of ``stage.DatasetSchema``)."""

    name: str
    target: str
    positive_class: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    id_column: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column an ingested record carries, in output order: id, numeric, categorical, target."""
        lead = (self.id_column,) if self.id_column else ()
        return (*lead, *self.features, self.target)


def parse_schema(text: str) -> DatasetSchema:
    """Parse and validate the schema JSON; raise ``SchemaError`` naming the bad field and the fix."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"not valid JSON ({exc}); set it to stage.dataset.model_dump_json()") from None
    if not isinstance(raw, Mapping):
        raise SchemaError(
            f"expected a JSON object, got {type(raw).__name__}; set it to stage.dataset.model_dump_json()"
        )
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise SchemaError(
            f"unknown fields {unknown}; this function understands {list(_FIELDS)}. "
            "Update lambdas/firehose_transform when the dataset schema gains a field"
        )
    missing = [f for f in _REQUIRED if f not in raw]
    if missing:
        raise SchemaError(f"missing fields {missing}; set it to stage.dataset.model_dump_json()")
    schema = DatasetSchema(
        name=_column(raw, "name"),
        target=_column(raw, "target"),
        positive_class=_text(raw, "positive_class"),
        numeric=_columns(raw, "numeric"),
        categorical=_columns(raw, "categorical"),
        id_column=None if raw.get("id_column") is None else _column(raw, "id_column"),
    )
    _check_consistent(schema)
    return schema


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw[field]
    if not isinstance(value, str) or not value:
        raise SchemaError(f"field {field!r} = {value!r} must be a non-empty string")
    return value


def _column(raw: Mapping[str, Any], field: str) -> str:
    value = _text(raw, field)
    if not _COLUMN.match(value):
        raise SchemaError(
            f"field {field!r} = {value!r} must be lower-case letters, digits and '_' "
            "(Glue and Athena fold case)"
        )
    return value


def _columns(raw: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = raw.get(field, [])
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise SchemaError(f"field {field!r} = {value!r} must be a list of column names")
    bad = [c for c in value if not _COLUMN.match(c)]
    if bad:
        raise SchemaError(f"field {field!r}: column names {bad} must be lower-case letters, digits and '_'")
    if len(set(value)) != len(value):
        raise SchemaError(f"field {field!r} lists a column twice; list each feature once")
    return tuple(value)


def _check_consistent(schema: DatasetSchema) -> None:
    features = schema.features
    if not features:
        raise SchemaError("no feature columns: list at least one column under 'numeric' or 'categorical'")
    if schema.target in features:
        raise SchemaError(
            f"target column {schema.target!r} is also a feature; a model must not see its own label"
        )
    both = sorted(set(schema.numeric) & set(schema.categorical))
    if both:
        raise SchemaError(f"columns {both} are both numeric and categorical; keep each in one list")
    if schema.id_column is not None and schema.id_column in (*features, schema.target):
        raise SchemaError(
            f"id_column {schema.id_column!r} is also a feature or the target; use a separate column"
        )
    clash = sorted(set(schema.columns) & set(METADATA_COLUMNS))
    if clash:
        raise SchemaError(
            f"columns {clash} collide with the ingest metadata this function stamps on every record "
            f"{list(METADATA_COLUMNS)}; rename them in the dataset"
        )
