"""``rookery local run --data``: a JSON-lines or CSV file into the local raw bucket, as Firehose lands it.

The file's columns are checked against the stage's dataset schema up front (a clear error names
what is missing); its contents are not judged here: bad values, one class or no rows at all are for
the Preprocess job to report, as it would for data Firehose delivered. Records land as JSON lines at
``s3://<raw>/<dataset>/<partition_key>=<YYYY-MM-DD>/<object>`` (Firehose's layout), and the
returned URI is that one object, so the run reads exactly this file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from emulators.core.home import LocalHome
from emulators.firehose.exceptions import DataFileError
from emulators.s3 import LocalS3
from stage import DataLayout, DatasetSchema

# CSV spellings of a missing value (R's NA as in the penguins CSV, pandas' NaN, empty).
MISSING: Final = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})


@dataclass(frozen=True)
class Landed:
    uri: str
    records: int
    path: Path


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # left as sent: the Preprocess job reports it as an invalid value
    if number.is_integer() and not any(c in text for c in ".eE"):
        return int(number)
    return number


def _csv_records(text: str, schema: DatasetSchema, name: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not header:
        return []
    missing = [c for c in schema.columns if c not in header]
    if missing:
        raise DataFileError(
            f"--data {name}: the CSV header has no column(s) {missing} of the {schema.name!r} schema "
            f"(header: {header}; the schema wants {list(schema.columns)}); add them, or check the stage"
        )
    numeric = set(schema.numeric)
    records = []
    for row in reader:
        record: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                raise DataFileError(
                    f"--data {name}: line {reader.line_num} has more fields than the header; fix that line"
                )
            text = (value or "").strip()
            record[key] = None if text in MISSING else (_number(text) if key in numeric else text)
        records.append(record)
    return records


def _json_records(text: str, schema: DatasetSchema, name: str) -> list[dict[str, Any]]:
    records = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise DataFileError(
                f"--data {name}: line {number} is not JSON ({exc}); write one JSON object per line"
            ) from None
        if not isinstance(value, dict):
            raise DataFileError(
                f"--data {name}: line {number} is a JSON {type(value).__name__}, not a record (an object)"
            )
        seen.update(value)
        records.append(value)
    missing = [c for c in schema.columns if c not in seen]
    if records and missing:
        raise DataFileError(
            f"--data {name}: no record has the field(s) {missing} of the {schema.name!r} schema "
            f"(records have {sorted(seen)}); fix the file or the stage's [dataset]"
        )
    return records


def read_records(path: Path, schema: DatasetSchema) -> list[dict[str, Any]]:
    """Records from a ``.csv`` file (header row) or JSON lines (``.jsonl``/``.json``/``.ndjson``/other)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(f"--data {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"--data {path}: cannot read it as UTF-8 text ({exc})") from None
    is_csv = path.suffix.lower() == ".csv" or (
        path.suffix.lower() not in (".jsonl", ".json", ".ndjson")
        and not text.lstrip().startswith("{")
        and text.strip() != ""
    )
    return _csv_records(text, schema, path.name) if is_csv else _json_records(text, schema, path.name)


def land(
    home: LocalHome,
    path: Path,
    *,
    schema: DatasetSchema,
    layout: DataLayout,
    raw_bucket: str,
    when: dt.datetime | None = None,
) -> Landed:
    """Check ``path`` against ``schema`` and store its records where Firehose would put them today."""
    records = read_records(path, schema)
    moment = when or dt.datetime.now(dt.UTC)
    prefix = layout.partition(schema, moment.strftime("%Y-%m-%d"))
    stamp = moment.strftime("%Y-%m-%d-%H-%M-%S")
    uri = f"s3://{raw_bucket}/{prefix}rookery-local-data-1-{stamp}-{uuid.uuid4()}"
    body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    target = LocalS3(home).put_bytes(body, uri)
    return Landed(uri=uri, records=len(records), path=target)
