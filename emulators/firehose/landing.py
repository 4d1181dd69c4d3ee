"""``rookery local run --data``: a JSON-lines or CSV file into the local raw bucket, as Firehose lands it.

The file is streamed: it is read a line at a time and written as it is read, so memory stays
bounded whatever its size. What can be judged before any step runs is judged here, in a few lines:
an empty file, a CSV with a header and no rows, a likely delimiter other than the comma (detected
and used, and said), the schema's columns missing from the header (with the closest name offered),
a line that is not JSON or not UTF-8. The values themselves (bad numbers, one class) are for the
Preprocess job to report, as it would for data Firehose delivered.

Records land as JSON lines under a prefix of their own,
``s3://<raw>/<upload_prefix><dataset>/<upload id>/`` (outside the dataset's prefix, so runs without
``--data`` never read them), and the run's ``InputDataUri`` is that prefix: it reads exactly this file.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from emulators.core.files import replacing
from emulators.core.home import LocalHome
from emulators.firehose.exceptions import DataFileError
from emulators.s3 import LocalS3
from stage import DataLayout, DatasetSchema

# CSV spellings of a missing value (R's NA as in the penguins CSV, pandas' NaN, empty).
MISSING: Final = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})
JSON_SUFFIXES: Final = (".jsonl", ".json", ".ndjson")
# Delimiters a CSV export commonly uses; the one that splits the header into the most fields wins.
DELIMITERS: Final = (",", ";", "\t", "|")
SHOWN_COLUMNS: Final = 8  # header names quoted in an error, at most


@dataclass(frozen=True)
class Landed:
    uri: str  # the upload's own prefix: the run's InputDataUri
    object_uri: str
    records: int
    path: Path
    size: int  # bytes landed
    delimiter: str | None  # the CSV delimiter read (None: JSON lines)


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # left as sent: the Preprocess job reports it as an invalid value
    if number.is_integer() and not any(c in text for c in ".eE"):
        return int(number)
    return number


def _shown(names: Sequence[str]) -> str:
    head = ", ".join(repr(n) for n in names[:SHOWN_COLUMNS])
    return head + (f" and {len(names) - SHOWN_COLUMNS} more" if len(names) > SHOWN_COLUMNS else "")


def _missing_columns(name: str, schema: DatasetSchema, present: Sequence[str], where: str) -> DataFileError:
    """A short error: each missing column with the closest present name, then what the file has."""
    missing = [c for c in schema.columns if c not in present]
    offered = []
    for column in missing:
        close = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
        offered.append(f"{column!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return DataFileError(
        f"--data {name}: {where} lacks {len(missing)} column(s) of the {schema.name!r} schema: "
        f"{', '.join(offered)}.\n{where[0].upper()}{where[1:]} has {len(present)}: {_shown(list(present))}. "
        "Rename them in the file or fix the stage's [dataset]."
    )


@dataclass
class DataFile:
    """One ``--data`` file, opened and checked up front; iterate once for its records."""

    path: Path
    schema: DatasetSchema
    delimiter: str | None = None  # set for CSV
    records: int = 0
    _handle: IO[str] | None = field(default=None, repr=False)
    _header: list[str] = field(default_factory=list, repr=False)
    _pending: str = field(default="", repr=False)  # JSON lines: the first line, already read

    @classmethod
    def open(cls, path: Path, schema: DatasetSchema) -> DataFile:
        """Open ``path`` and check what can be checked before reading it: emptiness, format, header."""
        try:
            handle = path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise DataFileError(f"--data {path}: no such file") from None
        except OSError as exc:
            raise DataFileError(f"--data {path}: cannot read it ({exc.strerror})") from None
        data = cls(path, schema, _handle=handle)
        try:
            data._start()
        except BaseException:
            handle.close()
            raise
        return data

    def _start(self) -> None:
        assert self._handle is not None
        first = self._read_first_line()
        if not first.strip():
            raise DataFileError(
                f"--data {self.path.name}: the file is empty; "
                "give a CSV with a header and rows, or JSON lines"
            )
        is_json = self.path.suffix.lower() in JSON_SUFFIXES or (
            self.path.suffix.lower() != ".csv" and first.lstrip().startswith("{")
        )
        if is_json:
            self._pending = first
            return
        self.delimiter = _delimiter(first, self.schema)
        self._header = next(csv.reader([first], delimiter=self.delimiter))
        header = [h.strip() for h in self._header]
        if not set(self.schema.columns) <= set(header):
            raise _missing_columns(self.path.name, self.schema, header, "the CSV header")
        self._header = header

    def _read_first_line(self) -> str:
        """The first non-blank line (blank lines before the header are skipped)."""
        assert self._handle is not None
        try:
            for line in self._handle:
                if line.strip():
                    return line
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.path.name, 1, exc) from None
        return ""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self._handle is not None
        try:
            if self.delimiter is None:
                yield from self._json()
            else:
                yield from self._csv()
        finally:
            self._handle.close()
        self._check_end()

    def _csv(self) -> Iterator[dict[str, Any]]:
        assert self._handle is not None and self.delimiter is not None
        reader = csv.reader(self._handle, delimiter=self.delimiter)
        header, width = self._header, len(self._header)
        numeric = [k in set(self.schema.numeric) for k in header]
        line = 1
        try:
            for line, row in enumerate(reader, start=2):  # noqa: B007 (the line is reported below)
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) > width:
                    raise DataFileError(
                        f"--data {self.path.name}: line {reader.line_num + 1} has {len(row)} fields, the "
                        f"header {width}; fix that line (a {self.delimiter!r} inside a value needs quotes)"
                    )
                record: dict[str, Any] = {}
                for key, value, is_number in zip(header, row, numeric, strict=False):
                    text = value.strip()
                    record[key] = None if text in MISSING else (_number(text) if is_number else text)
                for key in header[len(row) :]:
                    record[key] = None
                self.records += 1
                yield record
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.path.name, line, exc) from None
        except csv.Error as exc:
            raise DataFileError(f"--data {self.path.name}: line {reader.line_num}: {exc}") from None

    def _json(self) -> Iterator[dict[str, Any]]:
        assert self._handle is not None
        seen: set[str] = set()
        number = 1
        try:
            for number, line in enumerate(_chain(self._pending, self._handle), start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    raise DataFileError(
                        f"--data {self.path.name}: line {number} is not JSON ({exc}); "
                        "write one JSON object per line"
                    ) from None
                if not isinstance(value, dict):
                    raise DataFileError(
                        f"--data {self.path.name}: line {number} is a JSON {type(value).__name__}, "
                        "not a record (an object)"
                    )
                if len(seen) < len(self.schema.columns) or not seen.issuperset(value):
                    seen.update(value)
                self.records += 1
                yield value
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.path.name, number, exc) from None
        if self.records and not set(self.schema.columns) <= seen:
            raise _missing_columns(self.path.name, self.schema, sorted(seen), "every record")

    def _check_end(self) -> None:
        if self.records == 0:
            what = "a header and no rows" if self.delimiter is not None else "no records"
            raise DataFileError(f"--data {self.path.name}: the file has {what}; add rows to train on")


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest


def _not_utf8(name: str, line: int, exc: UnicodeDecodeError) -> DataFileError:
    return DataFileError(
        f"--data {name}: near line {line}, byte {exc.object[exc.start : exc.start + 1]!r} is not UTF-8; "
        "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
    )


def _delimiter(header: str, schema: DatasetSchema) -> str:
    """The delimiter that yields the schema's columns, else the one that splits the header most."""
    fields = {d: [h.strip() for h in next(csv.reader([header], delimiter=d))] for d in DELIMITERS}
    for delimiter in DELIMITERS:
        if set(schema.columns) <= set(fields[delimiter]):
            return delimiter
    return max(DELIMITERS, key=lambda d: len(fields[d]))


def read_records(path: Path, schema: DatasetSchema) -> DataFile:
    """The records of a ``.csv`` file (header row) or JSON lines, checked up front and streamed."""
    return DataFile.open(path, schema)


def land(
    home: LocalHome,
    path: Path,
    *,
    schema: DatasetSchema,
    layout: DataLayout,
    raw_bucket: str,
    when: dt.datetime | None = None,
) -> Landed:
    """Check ``path`` against ``schema`` and store its records under an upload prefix of their own."""
    data = DataFile.open(path, schema)
    moment = when or dt.datetime.now(dt.UTC)
    upload_id = f"{moment.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4().hex[:8]}"
    prefix_uri = f"s3://{raw_bucket}/{layout.upload(schema, upload_id)}"
    object_uri = f"{prefix_uri}{path.stem}.jsonl"
    target = LocalS3(home).path(object_uri)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    try:
        with replacing(target) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as out:
            out.writelines(encode(record) + "\n" for record in data)
    except DataFileError:
        target.parent.rmdir()  # the upload's prefix, left empty
        raise
    return Landed(
        uri=prefix_uri,
        object_uri=object_uri,
        records=data.records,
        path=target,
        size=target.stat().st_size,
        delimiter=data.delimiter,
    )
