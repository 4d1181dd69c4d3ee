r"""Endpoint payloads: raw records in (CSV, JSON, JSON lines), predictions out, errors that name the culprit.

Decoding is where serving time goes from about ten records per request, so the common cases are
vectorized: CSV without quotes is split once per line and each numeric column is converted by numpy
in one call; JSON goes through orjson. Only a payload that fails the fast path is re-read value by
value, to report the first bad record (1-based) and field.

CSV records end at "\n" (or "\r\n") and nowhere else, in both the split and the quoted (csv module)
path, as in RFC 4180: \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029, where str.splitlines would also cut,
are characters of a value; a lone "\r" outside quotes is an error.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from rookery_image import records
from rookery_image.contract import MAX_PAYLOAD_BYTES
from rookery_image.features import MISSING_LEVEL, Preprocessor, UnknownCategory

# A quoted field may be as long as the body (csv's default limit is 128 KB and raises csv.Error);
# the unquoted path has no limit either, so a long value is judged as a value in both.
csv.field_size_limit(MAX_PAYLOAD_BYTES)
# Records decoded, encoded and predicted at a time: a request holds Python objects for this many
# records at most, whatever the body's size, and numpy/xgboost still work on whole columns.
CHUNK_RECORDS = 8192
# A JSON body over this size is read a record at a time rather than parsed whole: orjson turns a list
# of small objects into Python objects tens of times the size of their text.
JSON_STREAM_BYTES = 256 * 1024

FORMATS = {
    "text/csv": "csv",
    "application/json": "json",
    "application/jsonlines": "jsonlines",
    "application/jsonl": "jsonlines",
    "application/x-jsonlines": "jsonlines",
}
MEDIA_TYPES = {"csv": b"text/csv", "json": b"application/json", "jsonlines": b"application/jsonlines"}
SUPPORTED = "text/csv, application/json or application/jsonlines"


class PayloadError(Exception):
    """A request the endpoint cannot answer; ``status`` is the HTTP status to send."""

    def __init__(
        self, status: int, message: str, *, record: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.record = record
        self.field = field

    def body(self) -> bytes:
        detail: dict[str, Any] = {"error": self.message}
        if self.record is not None:
            detail["record"] = self.record
        if self.field is not None:
            detail["field"] = self.field
        return orjson.dumps(detail)


def _media(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    if not content_type:
        raise PayloadError(415, f"the request has no Content-Type; send {SUPPORTED}")
    fmt = FORMATS.get(_media(content_type))
    if fmt is None:
        raise PayloadError(415, f"Content-Type {content_type!r} is not supported; send {SUPPORTED}")
    return fmt


def response_format(accept: str | None, request_fmt: str) -> str:
    """The answer's format for an ``Accept`` header, as RFC 9110 section 12.5.1 reads it.

    Each supported type takes the quality of the most specific range that matches it (``text/csv``
    over ``text/*`` over ``*/*``; 1 when the range has no ``q``), and ``q=0`` means "not acceptable".
    The best quality wins; on a tie the request's own format, then the first named. A missing
    header answers in the request's format; 406 only when no supported type is acceptable.
    """
    if not accept or not accept.strip():
        return request_fmt
    ranges = [_media_range(part, accept) for part in accept.split(",") if part.strip()]
    if not ranges:
        return request_fmt
    best: tuple[float, bool, int] | None = None
    chosen = request_fmt
    for media, fmt in FORMATS.items():
        quality, position = _quality(media, ranges)
        rank = (quality, fmt == request_fmt, -position)
        if quality > 0 and (best is None or rank > best):
            best, chosen = rank, fmt
    if best is None:
        raise PayloadError(406, f"Accept {accept!r} admits no supported type; accept {SUPPORTED}")
    return chosen


def _media_range(part: str, accept: str) -> tuple[str, float]:
    """One element of Accept: its media range (lower case) and its quality."""
    media, *params = (piece.strip() for piece in part.split(";"))
    media = media.lower()
    kind, slash, sub = media.partition("/")
    if not slash or not kind or not sub or (kind == "*" and sub != "*"):
        raise PayloadError(
            400, f"Accept {accept!r}: {media!r} is not a media range such as text/csv or text/*"
        )
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                quality = -1.0
            if not 0.0 <= quality <= 1.0:
                raise PayloadError(400, f"Accept {accept!r}: q={value.strip()} is not a quality from 0 to 1")
    return media, quality


def _quality(media: str, ranges: Sequence[tuple[str, float]]) -> tuple[float, int]:
    """The quality Accept gives ``media`` (that of the most specific matching range; 0 when none
    matches) and the position of the range that decided it."""
    kind = media.split("/", 1)[0]
    for pattern in (media, f"{kind}/*", "*/*"):
        matches = [(quality, -at) for at, (candidate, quality) in enumerate(ranges) if candidate == pattern]
        if matches:
            quality, at = max(matches)
            return quality, -at
    return 0.0, len(ranges)


@dataclass
class Batch:
    numeric: np.ndarray  # (n, numeric columns) float64, NaN = missing
    categories: list[list[str | None]]
    first: int = 0  # records of the body before this batch

    @property
    def size(self) -> int:
        return self.numeric.shape[0]


def _numeric_columns(
    pre: Preprocessor, columns: Sequence[Sequence[Any]], n: int, first: int = 0
) -> np.ndarray:
    out = np.empty((n, len(pre.numeric)), dtype=np.float64)
    for k, (col, values) in enumerate(zip(pre.numeric, columns, strict=True)):
        converted, invalid = records.numbers(values)
        if invalid:
            at = invalid[0]
            raise PayloadError(
                400,
                f"record {first + at + 1}, field {col.name!r}: {records.describe(values[at])} is not a "
                "number",
                record=first + at + 1,
                field=col.name,
            )
        out[:, k] = converted
    return out


def _category_columns(
    pre: Preprocessor, columns: Sequence[Sequence[Any]], first: int = 0
) -> list[list[str | None]]:
    out = []
    for col, values in zip(pre.categorical, columns, strict=True):
        texts: list[str | None] = []
        for i, value in enumerate(values):
            if type(value) is str:  # the common case, without a call
                texts.append(value or None)
                continue
            try:
                texts.append(records.category(value))
            except ValueError as exc:
                raise PayloadError(
                    400,
                    f"record {first + i + 1}, field {col.name!r}: {exc}",
                    record=first + i + 1,
                    field=col.name,
                ) from None
        out.append(texts)
    return out


CSV_FIX = (
    'quote a field that holds a comma, a quote or a line break ("a,b"), double each quote inside it, '
    "and end records with \\n or \\r\\n"
)


def _split_rows(text: str) -> Iterator[list[str]]:
    r"""CSV without quotes: records end at "\n" (a trailing "\r" is dropped); every comma splits.

    A blank (whitespace-only) line is no record; a line of empty fields is a record of missing values.
    Lines are read one at a time, so only the records being decoded are held as Python objects.
    """
    record = 0
    for number, raw in enumerate(_text_lines(text), start=1):
        line = raw[:-1] if raw.endswith("\n") else raw
        if "\r" in line:
            line = line[:-1] if line.endswith("\r") else line
            if "\r" in line:
                raise PayloadError(
                    400,
                    f"record {record + 1} (line {number}) is not valid CSV: a carriage return (\\r) inside "
                    f"an unquoted field; {CSV_FIX}",
                    record=record + 1,
                )
        if line.strip():
            record += 1
            yield line.split(",")


def _text_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` cut at "\n" only, each with its "\n", one at a time (io.StringIO would
    first copy the text at four bytes a character)."""
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start) + 1 or end
        yield text[start:stop]
        start = stop


def _quoted_rows(text: str) -> Iterator[list[str]]:
    r"""CSV with quotes, read by the csv module (strictly, as RFC 4180 reads it); the same records and
    blank lines as :func:`_split_rows`. A quote left open to the end of the body is named as such."""
    # csv gets lines cut at "\n" only, as _split_rows cuts them; it gives [] for an empty line and
    # [" "] for a whitespace-only one.
    reader = csv.reader(_text_lines(text), strict=True)
    record = 0
    started = 1  # the line the next record starts on
    try:
        for row in reader:
            if row and (len(row) > 1 or row[0].strip()):
                record += 1
                yield row
            started = reader.line_num + 1
    except csv.Error as exc:
        reason = str(exc)
        line = reader.line_num
        if reason == "unexpected end of data":
            reason, line = 'a quoted field there is never closed (an unclosed ")', started
        elif reason.startswith("new-line character seen in unquoted field"):
            reason = "a carriage return (\\r) inside an unquoted field"
        raise PayloadError(
            400,
            f"record {record + 1} (line {line}) is not valid CSV: {reason}; {CSV_FIX}",
            record=record + 1,
        ) from None


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, CHUNK_RECORDS)):
        yield chunk


def csv_batches(body: bytes, pre: Preprocessor) -> Iterator[Batch]:
    """The CSV body's records, :data:`CHUNK_RECORDS` at a time."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise PayloadError(
            400, f"record {line}: the body is not valid UTF-8 (byte {exc.start})", record=line
        ) from None
    rows = _quoted_rows(text) if '"' in text else _split_rows(text)
    width = len(pre.raw_columns)
    n_num = len(pre.numeric)
    first = 0
    for chunk in _chunks(rows):
        for i, row in enumerate(chunk):
            if len(row) != width:
                raise PayloadError(
                    400,
                    f"record {first + i + 1} has {len(row)} fields; expected {width}: "
                    f"{', '.join(pre.raw_columns)} (numeric then categorical, no header, no target)",
                    record=first + i + 1,
                )
        columns = list(zip(*chunk, strict=True))
        yield Batch(
            _numeric_columns(pre, columns[:n_num], len(chunk), first),
            _category_columns(pre, columns[n_num:], first),
            first,
        )
        first += len(chunk)
    if not first:
        raise PayloadError(400, "the CSV body has no records; send one record per line")


def _record_batches(items: Iterable[Any], pre: Preprocessor) -> Iterator[Batch]:
    first = 0
    for chunk in _chunks(items):
        yield _from_records(chunk, pre, first)
        first += len(chunk)
    if not first:
        raise PayloadError(400, "the body holds no records; send a record or a list of records")


def _from_records(items: list[Any], pre: Preprocessor, first: int = 0) -> Batch:
    need = set(pre.raw_columns)
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise PayloadError(
                400,
                f"record {first + i + 1} is a JSON {type(item).__name__}; send objects of field -> value "
                f"with fields {', '.join(pre.raw_columns)}",
                record=first + i + 1,
            )
        if not item.keys() >= need:
            absent = [c for c in pre.raw_columns if c not in item]
            raise PayloadError(
                400,
                f"record {first + i + 1} lacks field(s) {absent}; send every feature (null for a missing "
                "value)",
                record=first + i + 1,
                field=absent[0],
            )
    numeric = _numeric_columns(
        pre, [[item[c.name] for item in items] for c in pre.numeric], len(items), first
    )
    categories = _category_columns(pre, [[item[c.name] for item in items] for c in pre.categorical], first)
    return Batch(numeric, categories, first)


def _check_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise PayloadError(
            400,
            f"record {line}: the body is not valid UTF-8 (byte {exc.start}); send UTF-8 text",
            record=line,
        ) from None


def _lines(body: bytes) -> Iterator[bytes]:
    """The body's lines as bytes.splitlines cuts them (at \n, \r\n and \r), one at a time."""
    for raw in io.BytesIO(body):  # BytesIO cuts at "\n" only
        if b"\r" in raw:
            yield from raw.splitlines()
        else:
            yield raw[:-1] if raw.endswith(b"\n") else raw


def _json_lines(body: bytes) -> Iterator[Any]:
    record = 0
    for number, line in enumerate(_lines(body), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            _check_utf8(body)
            raise PayloadError(
                400,
                f"record {record + 1} (line {number}) is not valid JSON: {exc}",
                record=record + 1,
            ) from None
        record += 1
        yield item


def json_batches(body: bytes, pre: Preprocessor) -> Iterator[Batch]:
    """The JSON body's records (a record, a list of records, or one document per line).

    A body over :data:`JSON_STREAM_BYTES` that is a list, or one document per line, is read a
    record at a time; orjson reads a smaller body (or one large record) whole, faster.
    """
    if len(body) > JSON_STREAM_BYTES:
        start = body.lstrip()[:1]
        if start == b"[":
            yield from _record_batches(_array_items(body), pre)
            return
        if start == b"{" and body.strip().count(b"\n"):
            yield from _record_batches(_json_lines(body), pre)
            return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        _check_utf8(body)
        # Batch transform with SplitType=Line sends several JSON documents, one per line.
        if body.strip().count(b"\n"):
            try:
                items = list(_json_lines(body))
            except PayloadError:
                items = None
            if items is not None:
                yield from _record_batches(items, pre)
                return
        raise PayloadError(400, f"the body is not valid JSON: {exc}") from None
    items = [document] if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise PayloadError(
            400, f"the JSON body is a {type(document).__name__}; send a record (object) or a list of records"
        )
    yield from _record_batches(items, pre)


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _array_items(body: bytes) -> Iterator[Any]:
    """The items of a JSON list, parsed one at a time (the standard library's decoder, which can)."""
    _check_utf8(body)
    text = body.decode("utf-8")
    decoder = json.JSONDecoder(parse_constant=_not_a_number)
    at = _skip_space(text, _skip_space(text, 0) + 1)  # past the "[" the body starts with
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            try:
                item, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError as exc:
                raise PayloadError(400, f"the body is not valid JSON: {exc}") from None
            except RecursionError:
                raise PayloadError(400, "the body is not valid JSON: nested too deeply") from None
            yield item
            at = _skip_space(text, at)
            if text.startswith(",", at):
                at = _skip_space(text, at + 1)
                continue
            if text.startswith("]", at):
                at += 1
                break
            raise PayloadError(400, f"the body is not valid JSON: expected ',' or ']' at character {at}")
    if _skip_space(text, at) != len(text):
        raise PayloadError(400, f"the body is not valid JSON: unexpected content at character {at}")


def _skip_space(text: str, at: int) -> int:
    """The first position at or after ``at`` that is not JSON whitespace."""
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _not_a_number(name: str) -> Any:
    raise PayloadError(400, f"the body is not valid JSON: {name} is not a JSON value")


def jsonlines_batches(body: bytes, pre: Preprocessor) -> Iterator[Batch]:
    return _record_batches(_json_lines(body), pre)


BATCHES = {"csv": csv_batches, "json": json_batches, "jsonlines": jsonlines_batches}


def _whole(batches: Iterable[Batch], pre: Preprocessor) -> Batch:
    parts = list(batches)
    numeric = np.concatenate([b.numeric for b in parts])
    categories = [[text for b in parts for text in b.categories[k]] for k in range(len(pre.categorical))]
    return Batch(numeric, categories)


def decode_csv(body: bytes, pre: Preprocessor) -> Batch:
    """The whole CSV body as one batch (the endpoint decodes :func:`csv_batches` a chunk at a time)."""
    return _whole(csv_batches(body, pre), pre)


def decode_json(body: bytes, pre: Preprocessor) -> Batch:
    return _whole(json_batches(body, pre), pre)


def decode_jsonlines(body: bytes, pre: Preprocessor) -> Batch:
    return _whole(jsonlines_batches(body, pre), pre)


def encode(probabilities: np.ndarray, positive: np.ndarray, labels: tuple[str, str], fmt: str) -> bytes:
    """Predictions in order, one per record: ``(negative label, positive label)`` picked by ``positive``."""
    return join_answer([encode_part(probabilities, positive, labels, fmt)], fmt)


def encode_part(probabilities: np.ndarray, positive: np.ndarray, labels: tuple[str, str], fmt: str) -> bytes:
    """The answer for one batch of records; :func:`join_answer` puts the parts together."""
    probs = np.round(probabilities, 6).tolist()
    names = [labels[1] if hit else labels[0] for hit in positive.tolist()]
    if fmt == "csv":
        quoted = tuple(f'"{n}"' if ("," in n or '"' in n) else n for n in (labels[0], labels[1]))
        names = [quoted[1] if hit else quoted[0] for hit in positive.tolist()]
        return "".join(f"{p},{n}\n" for p, n in zip(probs, names, strict=True)).encode()
    rows = [{"probability": p, "label": n} for p, n in zip(probs, names, strict=True)]
    if fmt == "json":
        return orjson.dumps(rows)[1:-1]  # the list's items; join_answer brackets them
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def join_answer(parts: Sequence[bytes], fmt: str) -> bytes:
    if fmt == "json":
        return b'{"predictions":[' + b",".join(p for p in parts if p) + b"]}"
    return b"".join(parts)


class Predictor:
    """Decode, encode features, predict, encode the answer: the whole request, with no HTTP in it.

    The endpoint, the Flask baseline and the in-process benchmark all call :meth:`invoke`.
    """

    def __init__(self, bundle: Any, *, unknown_category: str = "error") -> None:
        self.bundle = bundle
        self.pre: Preprocessor = bundle.preprocessor
        self.labels = (self.pre.negative_class, self.pre.positive_class)
        self.unknown = unknown_category

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, bytes]:
        """(status, content type, body) for one request; never raises for a bad request."""
        try:
            fmt = request_format(content_type)
            out_fmt = response_format(accept, fmt)
            if len(body) > MAX_PAYLOAD_BYTES:
                raise PayloadError(
                    413, f"the body is {len(body)} bytes; the limit is {MAX_PAYLOAD_BYTES} (6 MB)"
                )
            if not body.strip():
                raise PayloadError(400, "the request body is empty; send at least one record")
            parts = [self._answer(batch, out_fmt) for batch in BATCHES[fmt](body, self.pre)]
            answer = join_answer(parts, out_fmt)
            return 200, MEDIA_TYPES[out_fmt], answer
        except PayloadError as exc:
            return exc.status, b"application/json", exc.body()

    def _answer(self, batch: Batch, fmt: str) -> bytes:
        try:
            matrix = self.pre.encode(batch.numeric, batch.categories, unknown=self.unknown)
        except UnknownCategory as exc:
            record = batch.first + exc.record + 1
            raise PayloadError(
                400,
                f"record {record}, field {exc.column!r}: {records.describe(exc.value)} is not a category "
                f"the model knows; known: {[lv for lv in exc.known if lv != MISSING_LEVEL]}",
                record=record,
                field=exc.column,
            ) from None
        probabilities = self.bundle.predict(matrix)
        return encode_part(probabilities, probabilities >= self.bundle.threshold, self.labels, fmt)
