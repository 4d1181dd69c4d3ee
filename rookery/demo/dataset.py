"""The demo's input: the bundled Palmer penguins rows as a producer would send them, and a few
deliberately invalid records so that ingestion's error path is visible. ``penguin_records`` is the
same bundled data for the tests and the benchmarks.

The rows come from the ``palmerpenguins`` package's CSV (read with the standard library): ``NA`` and
empty cells become JSON null, the schema's numeric columns JSON numbers, everything else text. The
package's column names are already the schema's (``bill_length_mm``, ``sex``, ...); a stage whose
schema names other columns gets a clear error rather than an empty dataset.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from emulators.firehose import ProducerRecord
from stage import DatasetSchema

PACKAGE: Final = "palmerpenguins"
CSV_NAME: Final = "penguins.csv"
_MISSING: Final = ("", "NA")


class DemoDataError(ValueError):
    """The bundled rows do not fit the stage's dataset schema; the message names the columns and the fix."""


@dataclass(frozen=True)
class DemoRecord(ProducerRecord):
    """A record the demo sends; for a deliberately invalid one, what is wrong with it (the transform
    must reject it)."""

    invalid_because: str | None = None


def bundled_csv() -> str:
    # Found without importing the package: its __init__ imports pandas (over a second) for nothing.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise DemoDataError(
            f"the {PACKAGE!r} package is not installed (it ships the demo's data); run `make setup`"
        )
    return (Path(spec.origin).parent / "data" / CSV_NAME).read_text(encoding="utf-8")


def penguin_records() -> list[dict[str, Any]]:
    """The bundled penguins as JSON records whatever the stage: every column, ``NA`` and empty cells as
    null, every number a JSON number (whole numbers as integers). The tests' and benchmarks' data."""
    return [
        {column: _number_or_text(raw) for column, raw in row.items()}
        for row in csv.DictReader(bundled_csv().splitlines())
    ]


def _number_or_text(raw: str) -> Any:
    if raw.strip() in _MISSING:
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def bundled_rows(schema: DatasetSchema, text: str | None = None) -> list[dict[str, Any]]:
    """The bundled CSV (or ``text``) as JSON-ready records, every column kept (extra ones too)."""
    reader = csv.DictReader((text if text is not None else bundled_csv()).splitlines())
    header = tuple(reader.fieldnames or ())
    missing = [c for c in schema.columns if c not in header]
    if missing:
        raise DemoDataError(
            f"the bundled {CSV_NAME} has columns {list(header)}, but dataset {schema.name!r} needs "
            f"{missing}; the demo ships penguins only: run it with a stage whose [dataset] is the "
            "penguins schema (e.g. --stage dev)"
        )
    numeric = set(schema.numeric)
    text_columns = {*schema.categorical, schema.target}
    return [
        {
            column: _value(raw, numeric=column in numeric, text=column in text_columns)
            for column, raw in row.items()
        }
        for row in reader
    ]


def _value(raw: str, *, numeric: bool, text: bool) -> Any:
    if raw.strip() in _MISSING:
        return None
    if numeric:
        try:
            return int(raw)
        except ValueError:
            return float(raw)
    if not text and raw.lstrip("-").isdigit():
        return int(raw)  # an extra column such as ``year``: sent as the number it is
    return raw


def _json(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode("utf-8")


def invalid_records(schema: DatasetSchema, template: Mapping[str, Any]) -> list[DemoRecord]:
    """What a buggy producer sends, each built from a valid ``template`` row and saying why it must fail."""
    out: list[DemoRecord] = []
    if schema.numeric:
        column = schema.numeric[-1]
        value = template.get(column) if template.get(column) is not None else 1
        out.append(
            DemoRecord(
                _json({**template, column: str(value)}),
                f"{column!r} sent as the text {str(value)!r} instead of a number",
            )
        )
    if schema.categorical:
        column = schema.categorical[0]
        out.append(
            DemoRecord(_json({**template, column: " "}), f"{column!r} is a blank string instead of null")
        )
    out.append(
        DemoRecord(
            ",".join("" if v is None else str(v) for v in template.values()).encode("utf-8"),
            "a CSV line instead of a JSON object",
        )
    )
    renamed = {k.title().replace("_", ""): v for k, v in template.items()}
    out.append(
        DemoRecord(
            _json(renamed),
            f"field names in another spelling ({next(iter(renamed))!r}), so none of the schema's columns "
            "is present",
        )
    )
    out.append(
        DemoRecord(
            _json({**template, schema.target: ""}),
            f"the target {schema.target!r} is a blank string instead of null",
        )
    )
    return out


def demo_records(schema: DatasetSchema, rows: Sequence[Mapping[str, Any]] | None = None) -> list[DemoRecord]:
    """The bundled rows with the invalid records spread among them, in a fixed (reproducible) order."""
    valid = list(rows) if rows is not None else bundled_rows(schema)
    if not valid:
        raise DemoDataError("no rows to ingest: the bundled CSV is empty")
    bad = invalid_records(schema, next((r for r in valid if None not in r.values()), valid[0]))
    records = [DemoRecord(_json(r)) for r in valid]
    step = max(1, len(records) // (len(bad) + 1))
    # Insert from the back so earlier positions stay where they were computed.
    for i, record in reversed(list(enumerate(bad, start=1))):
        records.insert(min(i * step, len(records)), record)
    return records
