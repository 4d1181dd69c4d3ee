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
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from rookery_contracts import raw_objects
from rookery_image.contract import UserError

GZIP_MAGIC = b"\x1f\x8b"


def number(value: Any) -> float:
    """One numeric field value as a float (NaN when missing); ValueError when it is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, int | float):  # bool is an int: true/false count as 1/0
        try:
            result = float(value)
        except OverflowError:  # an integer beyond float range (the fallback JSON parser keeps them)
            raise ValueError("the integer is too large to be a usable number") from None
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
    except (ValueError, TypeError, OverflowError):
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

# Decompressed bytes read at a time: lines are cut per block, so a file is never held whole.
READ_BLOCK = 1 << 20


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


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _blocks(stream: _Readable, gzipped: bool, shown: str) -> Iterator[bytes]:
    """The (decompressed) bytes of one file, a block at a time; a corrupt gzip file is a UserError."""
    while True:
        try:
            block = stream.read(READ_BLOCK)
        except (OSError, EOFError, zlib.error) as exc:
            if not gzipped:
                raise
            raise UserError(
                f"raw file {shown} is not a valid gzip file ({exc}); it is truncated or corrupt: "
                "delete it or upload it again"
            ) from None
        if not block:
            return
        yield block


def _lines(blocks: Iterable[bytes]) -> Iterator[list[bytes]]:
    """The lines of a byte stream, a list per block, exactly as ``bytes.splitlines`` cuts the whole
    (at LF, CR LF or CR).

    Each block is cut after its last LF, so a CR LF pair is never split; the rest waits for the
    next block.
    """
    pending: list[bytes] = []
    for block in blocks:
        end = block.rfind(b"\n")
        if end < 0:
            pending.append(block)
            continue
        pending.append(block[: end + 1])
        yield b"".join(pending).splitlines()
        pending = [block[end + 1 :]]
    rest = b"".join(pending)
    if rest:
        yield rest.splitlines()


def read_file(path: Path, shown: str) -> Generator[dict[str, Any], None, int]:
    """Every record of one Firehose object: JSON lines, plain or gzip (detected by content, not name).

    Streamed: one block of the file and one record are in memory at a time. Returns the number of
    records.
    """
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    records = lines_before = 0
    with path.open("rb") as raw:
        gzipped = raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else nullcontext(raw) as stream:
            blocks = _blocks(stream, gzipped, shown)
            for lines in _lines(blocks):
                for number_, line in enumerate(lines, start=lines_before + 1):
                    try:
                        value = loads(line)
                    except decode_error:
                        if not line.strip():
                            continue
                        try:
                            values = _parse_line(line)
                        except (ValueError, UnicodeDecodeError) as exc:
                            _finish(blocks)
                            raise UserError(
                                f"raw file {shown} line {number_} is not JSON ({exc}); Firehose writes "
                                "one JSON record per line: fix or remove that line"
                            ) from None
                    else:
                        if isinstance(value, dict):  # the common case: one record on its line
                            records += 1
                            yield value
                            continue
                        values = [value]
                    for value in values:
                        if not isinstance(value, dict):
                            _finish(blocks)
                            raise UserError(
                                f"raw file {shown} line {number_} holds a JSON {type(value).__name__}, "
                                "not a record (object of field -> value); fix or remove that line"
                            )
                        records += 1
                        yield value
                lines_before += len(lines)
    return records


def _finish(blocks: Iterator[bytes]) -> None:
    """Read a file to its end before reporting a bad line in it: a corrupt gzip file is reported as
    such, whatever its lines hold (the file's own problem comes first, as when files were read whole)."""
    for _ in blocks:
        pass


class RawReader:
    """Every record under a folder, recursively, streamed; hidden files and Firehose's errors/ are skipped.

    Iterate once; afterwards ``files``, ``skipped`` and ``records`` say what was read. The pass ends
    with a UserError when there were no data files or no records, unless ``require_records`` is
    False (one shard of a multi-instance job may hold none; the job checks the whole).
    """

    def __init__(self, folder: Path, *, require_records: bool = True) -> None:
        if not folder.is_dir():
            raise UserError(
                f"no raw input folder {folder}; map the raw data (e.g. s3://<raw-bucket>/<dataset>/) to "
                "the processing input 'raw'"
            )
        self.folder = folder
        self.require_records = require_records
        self.files: list[str] = []
        self.skipped: list[dict[str, str]] = []
        self.records = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        folder = self.folder
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if not path.is_file():
                continue
            reason = raw_objects.skip_reason(rel.as_posix())
            if reason == raw_objects.HIDDEN:
                continue
            if reason:
                self.skipped.append({"path": rel.as_posix(), "reason": reason})
                continue
            self.records += yield from read_file(path, rel.as_posix())
            self.files.append(rel.as_posix())
        if self.require_records:
            self.check(len(self.files), self.records, folder)

    @staticmethod
    def check(files: int, records: int, folder: Path | str) -> None:
        """UserError when the raw input (one folder, or every shard together) holds no records."""
        if not files:
            raise UserError(
                f"the raw input {folder} holds no data files; check that the processing input points at "
                "the dataset's prefix in the raw bucket and that data has been ingested"
            )
        if not records:
            raise UserError(f"the raw input {folder} has {files} file(s) but no records; ingest data first")
