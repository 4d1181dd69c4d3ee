"""The dataset schema: the columns of one tabular binary-classification dataset and the rules they obey.

A stage declares it (``[dataset]`` in ``infra/stages/<name>.toml``, held as ``Stage.dataset``); it
travels as JSON (:meth:`DatasetSchema.to_json`) in ``ROOKERY_DATASET_SCHEMA`` to the Firehose
transform and the preprocess job, which read it back with :func:`parse_schema`. Every rule lives
here; every problem names the field, the value and the fix (:class:`SchemaError`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# Glue and Athena fold names to lower case, and a column name is also a JSON field of every record.
# \Z, not $: a trailing newline is no part of a name.
COLUMN_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,63}\Z")
FIELDS: Final = ("name", "target", "positive_class", "numeric", "categorical", "id_column", "group_column")
REQUIRED: Final = ("name", "target", "positive_class")
# The share of a feature column's values that may be invalid (text in a numeric column, a list or an
# object) before the preprocess job refuses the data instead of imputing them as missing; a stage
# sets its own with ml.max_invalid_fraction.
DEFAULT_MAX_INVALID_FRACTION: Final = 0.01


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a schema: the field (None: the schema as a whole), its value and the fix."""

    field: str | None
    value: object
    message: str

    def __str__(self) -> str:
        if self.field is None:
            return self.message
        shown = "" if self.value is MISSING else f" = {self.value!r}"
        return f"{self.field}{shown}: {self.message}"


class SchemaError(ValueError):
    """The schema is invalid; ``problems`` lists every problem found, each with its field and fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class DatasetSchema:
    """The dataset's columns; constructing one validates it (:class:`SchemaError` on any problem).

    ``name`` is the dataset's name: the raw-bucket prefix and the Glue table names derive from it.
    ``positive_class`` is the target value that counts as positive. ``numeric`` and ``categorical``
    are the feature columns (lists are accepted and kept as tuples); ``id_column`` is optional.
    ``group_column`` (optional) names the entity a row belongs to (a person, an account): all rows of
    one group land in the same train/validation/test split, so no entity is both trained and tested on.
    """

    name: str
    target: str
    positive_class: str
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    id_column: str | None = None
    group_column: str | None = None

    def __post_init__(self) -> None:
        given = {field: getattr(self, field) for field in FIELDS}  # as passed, for the messages
        for field in ("numeric", "categorical"):
            if isinstance(given[field], list):
                object.__setattr__(self, field, tuple(given[field]))
        problems = _field_problems(self, given)
        if not problems:
            problems = _consistency_problems(self)
        if problems:
            raise SchemaError(problems)

    @property
    def features(self) -> tuple[str, ...]:
        """Feature columns in the order models and CSV payloads carry them: numeric, then categorical."""
        return self.numeric + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column an ingested record carries, in order: id, group, numeric, categorical, target."""
        lead = dict.fromkeys(c for c in (self.id_column, self.group_column) if c)
        return (*lead, *self.features, self.target)

    def to_dict(self) -> dict[str, Any]:
        """The schema as a JSON object (lists for the column tuples), fields in :data:`FIELDS` order."""
        return {
            "name": self.name,
            "target": self.target,
            "positive_class": self.positive_class,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "id_column": self.id_column,
            "group_column": self.group_column,
        }

    def to_json(self) -> str:
        """Compact JSON of :meth:`to_dict`: the value of ``ROOKERY_DATASET_SCHEMA``."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def schema_from_mapping(raw: object) -> DatasetSchema:
    """Validate a mapping of the schema's fields (a stage file's ``[dataset]``, parsed JSON)."""
    if isinstance(raw, DatasetSchema):
        return raw
    if not isinstance(raw, Mapping):
        raise SchemaError(
            [
                Problem(
                    None,
                    raw,
                    f"the dataset schema must be an object with fields {list(FIELDS)}, "
                    f"not {type(raw).__name__}",
                )
            ]
        )
    problems = [
        Problem(str(field), value, f"unknown field; remove it or check its spelling (fields: {list(FIELDS)})")
        for field, value in raw.items()
        if field not in FIELDS
    ]
    problems += [Problem(f, MISSING, "required field is missing; add it") for f in REQUIRED if f not in raw]
    if problems:
        raise SchemaError(problems)
    return DatasetSchema(**{f: raw[f] for f in FIELDS if f in raw})


def parse_schema(text: str) -> DatasetSchema:
    """Parse the schema's JSON (:meth:`DatasetSchema.to_json`) and validate it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            [Problem(None, text, f"not valid JSON ({exc}); set it to the stage's dataset.to_json()")]
        ) from None
    return schema_from_mapping(raw)


def _field_problems(schema: DatasetSchema, given: Mapping[str, object]) -> list[Problem]:
    """Each field on its own (``given``: the values as passed, which the messages show)."""
    problems = []
    if not _is_column(schema.name):
        problems.append(
            Problem(
                "name",
                given["name"],
                "must be lower-case letters, digits and '_' (a Glue table and S3 prefix); e.g. 'penguins'",
            )
        )
    for field in ("target", "id_column", "group_column"):
        value = getattr(schema, field)
        if (value is not None or field == "target") and not _is_column(value):
            problems.append(
                Problem(
                    field,
                    given[field],
                    "column names must be lower-case letters, digits and '_' (Glue and Athena fold case)",
                )
            )
    if not isinstance(schema.positive_class, str) or not schema.positive_class:
        problems.append(
            Problem(
                "positive_class",
                given["positive_class"],
                "must be the non-empty name of the class that counts as positive, e.g. 'female'",
            )
        )
    for field in ("numeric", "categorical"):
        value = getattr(schema, field)
        if not isinstance(value, tuple) or not all(isinstance(c, str) for c in value):
            problems.append(
                Problem(field, given[field], 'must be a list of column names, e.g. ["body_mass_g"]')
            )
            continue
        bad = [c for c in value if not COLUMN_NAME.match(c)]
        if bad:
            problems.append(
                Problem(
                    field,
                    given[field],
                    f"column names {bad} must be lower-case letters, digits and '_'; rename them",
                )
            )
        elif len(set(value)) != len(value):
            problems.append(Problem(field, given[field], "a column is listed twice; list each feature once"))
    return problems


def _consistency_problems(schema: DatasetSchema) -> list[Problem]:
    features = schema.features
    if not features:
        return [
            Problem(
                None, MISSING, "no feature columns: list at least one column under 'numeric' or 'categorical'"
            )
        ]
    problems = []
    if schema.target in features:
        problems.append(
            Problem(
                "target",
                schema.target,
                f"target column {schema.target!r} is also listed as a feature; remove it from "
                "'numeric'/'categorical' (a model must not see its own label)",
            )
        )
    both = sorted(set(schema.numeric) & set(schema.categorical))
    if both:
        problems.append(
            Problem(None, MISSING, f"columns {both} are both numeric and categorical; keep each in one list")
        )
    if schema.id_column is not None and schema.id_column in (*features, schema.target):
        problems.append(
            Problem(
                "id_column",
                schema.id_column,
                f"id_column {schema.id_column!r} is also a feature or the target; use a separate column",
            )
        )
    if schema.group_column is not None and schema.group_column in (*features, schema.target):
        problems.append(
            Problem(
                "group_column",
                schema.group_column,
                f"group_column {schema.group_column!r} is also a feature or the target; name the column "
                "that identifies the entity (e.g. 'customer_id'), which the model does not see",
            )
        )
    return problems


def _is_column(value: object) -> bool:
    return isinstance(value, str) and COLUMN_NAME.match(value) is not None
