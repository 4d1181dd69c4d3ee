"""The dataset schema the preprocess job receives as JSON (``ROOKERY_DATASET_SCHEMA``).

The same fields and rules as ``stage.DatasetSchema``; the image is shipped alone, so it
parses and checks the JSON itself and names the field and the fix on every error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rookery_image.contract import DATASET_SCHEMA_ENV, UserError

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_FIELDS = ("name", "target", "positive_class", "numeric", "categorical", "id_column")


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    target: str
    positive_class: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    id_column: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """Feature columns in the order CSV payloads carry them: numeric, then categorical."""
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "positive_class": self.positive_class,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "id_column": self.id_column,
        }


def _bad(field: str, problem: str) -> UserError:
    return UserError(f"{DATASET_SCHEMA_ENV}: field {field!r} {problem}")


def _column(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _COLUMN.match(value):
        raise _bad(field, f"= {value!r} is not a column name; use lower-case letters, digits and '_'")
    return value


def _columns(field: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(field, f'= {value!r} must be a list of column names, e.g. ["body_mass_g"]')
    cols = tuple(_column(field, v) for v in value)
    if len(set(cols)) != len(cols):
        raise _bad(field, "lists a column twice; list each feature once")
    return cols


def parse_schema(text: str) -> DatasetSchema:
    """Parse and check the schema JSON; raise :class:`UserError` naming the field and the fix."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{DATASET_SCHEMA_ENV} is not valid JSON ({exc}); set it to the schema object"
        ) from None
    if not isinstance(raw, dict):
        raise UserError(f"{DATASET_SCHEMA_ENV} must be a JSON object with fields {list(_FIELDS)}")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise UserError(
            f"{DATASET_SCHEMA_ENV}: unknown fields {unknown}; the schema has fields {list(_FIELDS)}"
        )
    for field in ("name", "target", "positive_class"):
        if field not in raw:
            raise _bad(field, "is missing; add it")
    name = _column("name", raw["name"])
    target = _column("target", raw["target"])
    positive = raw["positive_class"]
    if not isinstance(positive, str) or not positive:
        raise _bad(
            "positive_class", f"= {positive!r} must be the non-empty class name that counts as positive"
        )
    numeric = _columns("numeric", raw.get("numeric"))
    categorical = _columns("categorical", raw.get("categorical"))
    id_column = raw.get("id_column")
    if id_column is not None:
        id_column = _column("id_column", id_column)
    features = numeric + categorical
    if not features:
        raise _bad("numeric", "and 'categorical' are both empty; list at least one feature column")
    if target in features:
        raise _bad("target", f"{target!r} is also a feature; remove it from 'numeric'/'categorical'")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise _bad("categorical", f"repeats numeric columns {both}; keep each column in one list")
    if id_column is not None and id_column in (*features, target):
        raise _bad("id_column", f"{id_column!r} is also a feature or the target; use a separate column")
    return DatasetSchema(name, target, positive, numeric, categorical, id_column)
