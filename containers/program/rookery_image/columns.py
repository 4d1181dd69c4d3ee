"""The schema's columns of a stream of raw records, held column-wise: what the preprocess job keeps.

A parsed record is a dict of every field (Firehose's ``_ingest_ts`` and ``_firehose_record_id``
included) and costs kilobytes; the model needs a few numbers and texts from it. :func:`collect`
takes the schema's fields from each record and lets the dict go at once, converting them a block of
rows at a time with the value rules of :mod:`rookery_image.records`: numbers into float64 arrays,
texts into small integer codes (:class:`TextColumn`). A row then costs about a hundred bytes (plus
its id, if the schema has one), however many fields the producer sends.

:func:`first_copies` finds exact duplicate rows (Firehose delivers at least once) on these columns
without a Python object per row.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from rookery_image import records

# Rows converted at a time: big enough for numpy to pay off, small enough that the block's parsed
# values (a few MB) never matter.
BLOCK_ROWS = 16_384

MISSING_CODE = 0  # TextColumn code of a missing value (levels[0] is None)
INVALID_EXAMPLES = 3  # distinct invalid values kept per column, for the report and the error


@dataclass(frozen=True)
class TextColumn:
    """A text column as codes into ``levels``; code 0 is a missing value (``levels[0] is None``).

    Levels are in order of first appearance; every level but None occurs in the rows it was
    collected from (:meth:`take` keeps the levels, so a subset may not use them all).
    """

    codes: np.ndarray  # int32, one per row
    levels: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, row: int) -> str | None:
        return self.levels[self.codes[row]]

    def take(self, rows: np.ndarray) -> TextColumn:
        return TextColumn(self.codes[rows], self.levels)

    def texts(self) -> list[str | None]:
        levels = self.levels
        return [levels[c] for c in self.codes.tolist()]

    def counts(self) -> np.ndarray:
        """Rows per level (index = code)."""
        return np.bincount(self.codes, minlength=len(self.levels))

    def used_levels(self) -> list[str]:
        """The texts these rows hold, missing left out, in level order."""
        counts = self.counts()
        return [t for t, c in zip(self.levels, counts.tolist(), strict=True) if t is not None and c]


class _Coder:
    """Field values -> text codes (records.category's rule), learning levels as they appear."""

    def __init__(self) -> None:
        self.levels: list[str | None] = [None]
        # A raw text value is its own category (or missing when empty), so texts seen before are one
        # dict lookup. Only texts and null are keys: 1 and True are equal as keys but differ as
        # categories ("1", "true"), so other values always take the slow path.
        self._known: dict[Any, int] = {None: MISSING_CODE, "": MISSING_CODE}

    def codes(self, values: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
        """The codes of ``values`` (int32) and the positions of invalid ones (lists, objects), coded as
        missing."""
        try:
            codes = np.fromiter(map(self._known.get, values, repeat(-1)), dtype=np.int32, count=len(values))
        except TypeError:  # an unhashable value (a list or an object) somewhere in the block
            codes = np.full(len(values), -1, dtype=np.int32)
        invalid = []
        for i in np.flatnonzero(codes < 0).tolist():
            codes[i], bad = self._slow(values[i])
            if bad:
                invalid.append(i)
        return codes, invalid

    def _slow(self, value: Any) -> tuple[int, int]:
        try:
            text = records.category(value)
        except ValueError:
            return MISSING_CODE, 1
        if text is None:
            return MISSING_CODE, 0
        code = self._known.get(text)
        if code is None:
            code = len(self.levels)
            self.levels.append(text)
            self._known[text] = code
        return code, 0

    def column(self, blocks: list[np.ndarray]) -> TextColumn:
        codes = np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int32)
        return TextColumn(codes, tuple(self.levels))


@dataclass
class Columns:
    """The schema's fields of every record that has a target, column-wise, and what was left out."""

    rows_read: int
    missing_target: int  # records without a usable target value (not kept)
    fields: set[str]  # every field name any record had
    target: TextColumn
    numeric: np.ndarray  # (rows, len(schema.numeric)) float64, NaN = missing
    categorical: list[TextColumn]
    ids: list[Any] | None  # the id field's values as parsed (None when the schema has no id column)
    groups: TextColumn | None  # the group field's values as texts (None when the schema has no group column)
    invalid_values: dict[str, int]  # column -> invalid values among the kept rows; only columns with some
    invalid_examples: dict[str, list[str]]  # column -> the first few invalid values, shown (records.describe)


def collect(
    rows: Iterable[Mapping[str, Any]],
    *,
    target: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    id_column: str | None,
    group_column: str | None = None,
) -> Columns:
    """Take the named fields of every record, a block at a time; keep rows that have a target.

    A row without a usable target (missing, empty, a list or an object) is counted and left out
    before its features are looked at, so invalid values are counted among kept rows only.
    """
    with _no_cyclic_gc():
        return _collect(rows, target, numeric, categorical, id_column=id_column, group_column=group_column)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector. Each record makes a dict and a tuple that reference
    counting frees (JSON values hold no cycles), yet the collector would scan them several times
    on the way: about a sixth of the reading time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collect(
    rows: Iterable[Mapping[str, Any]],
    target: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    id_column: str | None,
    group_column: str | None,
) -> Columns:
    builder = _Builder(numeric, categorical, id_column is not None, group_column is not None)
    names = (
        target,
        *numeric,
        *categorical,
        *((id_column,) if id_column else ()),
        *((group_column,) if group_column else ()),
    )
    # itemgetter of several names gives a tuple, of one name the bare value.
    every = operator.itemgetter(*names) if len(names) > 1 else lambda row: (row[target],)
    fields: set[str] = set()
    note_fields = fields.update
    block: list[tuple[Any, ...]] = []
    take = block.append
    for row in rows:
        note_fields(row)
        try:
            take(every(row))  # the common case: the record has every field
        except KeyError:
            take(tuple(map(row.get, names)))
        if len(block) == BLOCK_ROWS:
            builder.add(block)
            block = []
            take = block.append
    builder.add(block)
    return builder.finish(fields)


class _Builder:
    def __init__(
        self, numeric: Sequence[str], categorical: Sequence[str], with_ids: bool, with_groups: bool
    ) -> None:
        self.numeric_names = tuple(numeric)
        self.categorical_names = tuple(categorical)
        self.target = _Coder()
        self.categories = [_Coder() for _ in categorical]
        self.target_blocks: list[np.ndarray] = []
        self.numeric_blocks: list[np.ndarray] = []
        self.category_blocks: list[list[np.ndarray]] = [[] for _ in categorical]
        self.ids: list[Any] | None = [] if with_ids else None
        self.groups = _Coder() if with_groups else None
        self.group_blocks: list[np.ndarray] = []
        self.invalid = dict.fromkeys((*numeric, *categorical), 0)
        self.examples: dict[str, list[str]] = {}
        self.rows_read = 0
        self.missing_target = 0

    def add(self, block: list[tuple[Any, ...]]) -> None:
        if not block:
            return
        self.rows_read += len(block)
        columns: list[Sequence[Any]] = list(zip(*block, strict=True))
        target_codes = self.target.codes(columns[0])[0]
        keep = np.flatnonzero(target_codes != MISSING_CODE)
        if len(keep) < len(block):
            self.missing_target += len(block) - len(keep)
            if not len(keep):
                return
            kept = keep.tolist()
            columns = [[col[i] for i in kept] for col in columns]
            target_codes = target_codes[keep]
        self.target_blocks.append(target_codes)
        at = 1
        numeric = np.empty((len(target_codes), len(self.numeric_names)), dtype=np.float64)
        for k, name in enumerate(self.numeric_names):
            numeric[:, k], bad_rows = records.numbers(columns[at])
            self._note_invalid(name, columns[at], bad_rows)
            at += 1
        self.numeric_blocks.append(numeric)
        coders = zip(self.categories, self.category_blocks, self.categorical_names, strict=True)
        for coder, blocks, name in coders:
            codes, bad_rows = coder.codes(columns[at])
            blocks.append(codes)
            self._note_invalid(name, columns[at], bad_rows)
            at += 1
        if self.ids is not None:
            self.ids.extend(columns[at])
            at += 1
        if self.groups is not None:
            self.group_blocks.append(self.groups.codes(columns[at])[0])  # a list or object: no group

    def _note_invalid(self, name: str, values: Sequence[Any], rows: list[int]) -> None:
        if not rows:
            return
        self.invalid[name] += len(rows)
        shown = self.examples.setdefault(name, [])
        for i in rows:
            if len(shown) == INVALID_EXAMPLES:
                break
            text = records.describe(values[i])
            if text not in shown:
                shown.append(text)

    def finish(self, fields: set[str]) -> Columns:
        numeric = (
            np.concatenate(self.numeric_blocks)
            if self.numeric_blocks
            else np.empty((0, len(self.numeric_names)), dtype=np.float64)
        )
        return Columns(
            rows_read=self.rows_read,
            missing_target=self.missing_target,
            fields=fields,
            target=self.target.column(self.target_blocks),
            numeric=numeric,
            categorical=[c.column(b) for c, b in zip(self.categories, self.category_blocks, strict=True)],
            ids=self.ids,
            groups=None if self.groups is None else self.groups.column(self.group_blocks),
            invalid_values={name: count for name, count in self.invalid.items() if count},
            invalid_examples=self.examples,
        )


# --- duplicates -------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def _canonical(values: np.ndarray) -> np.ndarray:
    """Numbers as the bits that compare them: -0.0 + 0.0 == +0.0, and one pattern for every NaN."""
    canonical = values + 0.0
    canonical[np.isnan(canonical)] = np.nan
    return canonical


def first_copies(numeric: np.ndarray, texts: Sequence[TextColumn], ids: Sequence[Any] | None) -> np.ndarray:
    """Indices (ascending) of the rows that are not an exact copy of an earlier row.

    Rows are equal when their numbers are (all missing values alike, 0.0 and -0.0 alike), their text
    codes are and their ids serialize to the same JSON. Each row is hashed to 64 bits with numpy,
    a column at a time; only rows whose hash another row shares are compared exactly, in Python, so
    the cost is a sort plus work per duplicate, and a hash collision can never drop a row.
    """
    n = len(numeric)
    hashed = np.full(n, _GOLDEN, dtype=np.uint64)
    for k in range(numeric.shape[1]):
        hashed = _mix(hashed ^ _canonical(numeric[:, k]).view(np.uint64)) + _GOLDEN
    for col in texts:
        hashed = _mix(hashed ^ col.codes.astype(np.uint64)) + _GOLDEN
    if ids is not None:
        id_hashes = np.fromiter(map(hash, map(orjson.dumps, ids)), dtype=np.int64, count=n)
        hashed = _mix(hashed ^ id_hashes.view(np.uint64)) + _GOLDEN
    order = np.argsort(hashed, kind="stable")  # stable: rows with one hash stay in row order
    ordered = hashed[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    shared = np.flatnonzero(np.diff(starts) > 1)
    if not len(shared):
        return np.arange(n)
    keep = np.ones(n, dtype=bool)
    for group in shared.tolist():
        seen: set[tuple[Any, ...]] = set()
        for row in order[starts[group] : starts[group + 1]].tolist():
            key = (
                _canonical(numeric[row]).tobytes(),
                *(int(col.codes[row]) for col in texts),
                None if ids is None else orjson.dumps(ids[row]),
            )
            if key in seen:
                keep[row] = False
            else:
                seen.add(key)
    return np.flatnonzero(keep)
