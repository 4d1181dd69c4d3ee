"""Raw records as ingested: reading Firehose output and turning field values into model inputs.

One set of value rules serves both the preprocess job (history, read from files) and the endpoint
(live requests), so a record means the same thing in training and in serving:

* numeric fields: JSON numbers or numeric strings; ``null``, absent-by-null and ``""`` are missing;
  anything else (text, lists, objects, infinities) is invalid.
* categorical fields: text as sent; numbers become their decimal text (``2007`` and ``2007.0`` are
  both ``"2007"``); ``null`` and ``""`` are missing; lists and objects are invalid.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from rookery_image.contract import UserError

GZIP_MAGIC = b"\x1f\x8b"
ERRORS_FOLDER = "errors"  # Firehose's error output prefix (rookery.config.DataLayout.error_prefix)


def number(value: Any) -> float:
    """One numeric field value as a float (NaN when missing); ValueError when it is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, int | float):  # bool is an int: true/false count as 1/0
        result = float(value)
    elif isinstance(value, str):
        if not value.strip():
            return math.nan
        result = float(value)  # ValueError for text
    else:
        raise ValueError(f"a {type(value).__name__} is not a number")
    if math.isinf(result):
        raise ValueError("infinity is not a usable number")
    return result


def numbers(values: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
    """A column of numeric field values as float64 (NaN = missing) and the positions of invalid values.

    The common case (numbers and nulls) is one vectorized conversion; only a column with empty
    strings or bad values takes the per-value path that finds the culprits.
    """
    try:
        column = np.asarray(values, dtype=np.float64)
        if column.ndim == 1 and not np.isinf(column).any():
            return column, []
    except (ValueError, TypeError):
        pass
    column = np.empty(len(values), dtype=np.float64)
    invalid = []
    for i, value in enumerate(values):
        try:
            column[i] = number(value)
        except (ValueError, TypeError):
            column[i] = math.nan
            invalid.append(i)
    return column, invalid


def category(value: Any) -> str | None:
    """One categorical field value as text (None when missing); ValueError for lists and objects."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    raise ValueError(f"a {type(value).__name__} is not a category")


def describe(value: Any, limit: int = 40) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- reading Firehose output ------------------------------------------------------------------


@dataclass
class RawData:
    records: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _parse_line(line: bytes) -> list[Any]:
    try:
        return [orjson.loads(line)]
    except orjson.JSONDecodeError:
        pass
    # Records concatenated without a newline ({..}{..}) are still records: decode them one by one.
    text = line.decode("utf-8")
    decoder = json.JSONDecoder()
    found, pos = [], 0
    while pos < len(text):
        value, end = decoder.raw_decode(text, pos)
        found.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return found


def read_file(path: Path, shown: str) -> list[dict[str, Any]]:
    """Every record of one Firehose object: JSON lines, plain or gzip (detected by content, not name)."""
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(
                f"raw file {shown} is not a valid gzip file ({exc}); it is truncated or corrupt: "
                "delete it or upload it again"
            ) from None
    records = []
    for number_, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = _parse_line(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(
                f"raw file {shown} line {number_} is not JSON ({exc}); Firehose writes one JSON record "
                "per line: fix or remove that line"
            ) from None
        for value in values:
            if not isinstance(value, dict):
                raise UserError(
                    f"raw file {shown} line {number_} holds a JSON {type(value).__name__}, not a record "
                    "(object of field -> value); fix or remove that line"
                )
            records.append(value)
    return records


def read_raw(folder: Path) -> RawData:
    """Read every file under ``folder`` recursively, skipping hidden files and Firehose's errors/ subtree."""
    if not folder.is_dir():
        raise UserError(
            f"no raw input folder {folder}; map the raw data (e.g. s3://<raw-bucket>/<dataset>/) to the "
            "processing input 'raw'"
        )
    raw = RawData()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file():
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        if ERRORS_FOLDER in rel.parts[:-1]:
            raw.skipped.append({"path": rel.as_posix(), "reason": "Firehose error output (failed records)"})
            continue
        raw.records.extend(read_file(path, rel.as_posix()))
        raw.files.append(rel.as_posix())
    if not raw.files:
        raise UserError(
            f"the raw input {folder} holds no data files; check that the processing input points at "
            "the dataset's prefix in the raw bucket and that data has been ingested"
        )
    if not raw.records:
        raise UserError(
            f"the raw input {folder} has {len(raw.files)} file(s) but no records; ingest data first"
        )
    return raw
