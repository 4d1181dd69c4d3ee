"""The preprocess job streams: records are read a block at a time and only the schema's columns are kept.

In process, against straightforward record-at-a-time definitions of the same rules (the way the job
read data before it streamed), and with memory measured per row rather than timed.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import tracemalloc
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from rookery_contracts.schema import DatasetSchema
from rookery_image import columns, features, preprocessing, records
from rookery_image.columns import TextColumn
from rookery_image.contract import UserError

SCHEMA = DatasetSchema(
    name="loans",
    target="defaulted",
    positive_class="yes",
    numeric=("income", "age"),
    categorical=("region", "employment"),
    id_column="loan_id",
)

# Values that exercise every rule: numbers as text, both zeros, NaN spellings, invalid values,
# numeric categories, missing and unusable targets, ids of several JSON types.
NUMBERS = [1, 1.0, "1.0", " 2.5 ", 2.5, -0.0, 0.0, "-0", None, "", "nan", "abc", [1], {"a": 1}, True, "1e999"]
CATEGORIES = ["north", "south", "", None, 2007, "2007", 2007.0, 2.5, True, "true", 1, ["x"], {"k": 1}]
TARGETS = ["yes", "no", "no", None, "", ["yes"], {"a": 1}]
IDS = ["a", "b", 1, "1", 1.0, None, True, [1, 2]]


def dirty_records(seed: int, n: int = 1500) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row = {
            "loan_id": rng.choice(IDS),
            "income": rng.choice(NUMBERS),
            "age": rng.choice(NUMBERS),
            "region": rng.choice(CATEGORIES),
            "employment": rng.choice(CATEGORIES),
            "defaulted": rng.choice(TARGETS),
            "_ingest_ts": "2024-05-01T12:00:00.250Z",
        }
        for name in ("loan_id", "income", "region"):
            if rng.random() < 0.05:
                del row[name]
        rows.append(row)
    rows += [dict(r) for r in rng.sample(rows, n // 5)]  # at-least-once delivery
    rng.shuffle(rows)
    return rows


def reference_clean(rows: Sequence[dict[str, Any]], schema: DatasetSchema) -> dict[str, Any]:
    """The cleaning rules applied record by record, holding every record (containers/README.md)."""
    kept = []
    for row in rows:
        try:
            target = records.category(row.get(schema.target))
        except ValueError:
            target = None
        if target is not None:
            kept.append((row, target))
    invalid: dict[str, int] = {}
    numeric = []
    for name in schema.numeric:
        values = []
        for row, _ in kept:
            try:
                values.append(records.number(row.get(name)))
            except (ValueError, TypeError):
                values.append(math.nan)
                invalid[name] = invalid.get(name, 0) + 1
        numeric.append(values)
    texts = []
    for name in schema.categorical:
        column: list[str | None] = []
        for row, _ in kept:
            try:
                column.append(records.category(row.get(name)))
            except ValueError:
                column.append(None)
                invalid[name] = invalid.get(name, 0) + 1
        texts.append(column)
    seen, unique = set(), []
    for j, (row, target) in enumerate(kept):
        key = (
            orjson.dumps(row.get(schema.id_column)) if schema.id_column else None,
            *(None if math.isnan(col[j]) else col[j] for col in numeric),
            *(col[j] for col in texts),
            target,
        )
        if key not in seen:
            seen.add(key)
            unique.append(j)
    labels = [int(kept[j][1] == schema.positive_class) for j in unique]
    return {
        "rows_read": len(rows),
        "dropped": {"missing_target": len(rows) - len(kept), "duplicate": len(kept) - len(unique)},
        "invalid_values": invalid,
        "class_counts": Counter(t for _, t in kept),
        "labels": labels,
        "numeric": np.array([[col[j] for col in numeric] for j in unique]).reshape(len(unique), -1),
        "categories": [[col[j] for j in unique] for col in texts],
        "ids": [kept[j][0].get(schema.id_column) for j in unique] if schema.id_column else None,
    }


def assert_cleaned_like_reference(data: preprocessing.Cleaned, expected: dict[str, Any]) -> None:
    assert data.rows_read == expected["rows_read"]
    assert data.dropped == expected["dropped"]
    assert list(data.invalid_values.items()) == list(expected["invalid_values"].items())
    assert data.labels.tolist() == expected["labels"]
    assert np.array_equal(data.numeric, expected["numeric"], equal_nan=True)
    # Equal as numbers, and the first copy's bits are the ones kept (-0.0 stays -0.0).
    assert np.signbit(data.numeric).tolist() == np.signbit(expected["numeric"]).tolist()
    assert [col.texts() for col in data.categories] == expected["categories"]
    if expected["ids"] is None:
        assert data.ids is None
    else:
        assert data.ids is not None
        assert [orjson.dumps(v) for v in data.ids] == [orjson.dumps(v) for v in expected["ids"]]
    counts = expected["class_counts"]
    assert data.negative_class == next(c for c in counts if c != SCHEMA.positive_class)


# --- the collector ------------------------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [7, columns.BLOCK_ROWS])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_clean_agrees_with_the_record_at_a_time_rules(
    monkeypatch: pytest.MonkeyPatch, seed: int, block_rows: int
) -> None:
    monkeypatch.setattr(columns, "BLOCK_ROWS", block_rows)
    rows = dirty_records(seed)
    expected = reference_clean(rows, SCHEMA)
    assert expected["dropped"]["duplicate"] > 0 and expected["invalid_values"], "the data exercises the rules"
    assert_cleaned_like_reference(preprocessing.clean(iter(rows), SCHEMA), expected)


def test_a_schema_without_ids_or_numbers_dedups_on_what_it_has() -> None:
    schema = DatasetSchema("loans", "defaulted", "yes", (), ("region", "employment"), None)
    rows = dirty_records(4)
    data = preprocessing.clean(iter(rows), schema)
    expected = reference_clean(rows, schema)
    assert data.dropped == expected["dropped"]
    assert [col.texts() for col in data.categories] == expected["categories"]
    assert data.numeric.shape == (len(expected["labels"]), 0)


class Record(dict[str, Any]):
    """A record that can be watched with a weak reference."""

    __slots__ = ("__weakref__",)


def test_the_collector_lets_each_record_go_before_the_next_is_read() -> None:
    alive: list[weakref.ref[Record]] = []
    most_alive = 0

    def stream() -> Iterator[Record]:
        nonlocal most_alive
        for row in dirty_records(5, n=3 * columns.BLOCK_ROWS // 2):
            most_alive = max(most_alive, sum(ref() is not None for ref in alive[-50:]))
            record = Record(row)
            alive.append(weakref.ref(record))
            yield record

    data = columns.collect(
        stream(), target="defaulted", numeric=("income", "age"), categorical=("region",), id_column="loan_id"
    )
    assert most_alive <= 1, "only the record being read is alive, never a block of them"
    assert not any(ref() is not None for ref in alive), "no record outlives the pass"
    assert isinstance(data.numeric, np.ndarray) and data.numeric.dtype == np.float64
    assert all(isinstance(col, TextColumn) and col.codes.dtype == np.int32 for col in data.categorical)


def _fat_firehose_file(folder: Path, rows: int) -> None:
    """Records as Firehose lands them, with many extra fields the schema does not use."""
    rng = np.random.default_rng(rows)
    path = folder / "loans" / "ingest_date=2024-05-01" / "part-0.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {f"note_{k}": "x" * 80 for k in range(20)}
    lines = []
    for i in range(rows):
        record = {
            "loan_id": f"L{i:08d}",
            "income": round(float(rng.lognormal(10, 0.5)), 2),
            "age": int(rng.integers(20, 70)),
            "region": ["north", "south", "east"][i % 3],
            "employment": "salaried" if i % 4 else None,
            "defaulted": "yes" if i % 5 == 0 else "no",
            **extra,
            "_ingest_ts": "2024-05-01T12:00:00.250Z",
            "_firehose_record_id": f"{i:056d}",
        }
        lines.append(json.dumps(record))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1))


def _peak_bytes(folder: Path) -> int:
    tracemalloc.start()
    try:
        preprocessing.clean(records.RawReader(folder), SCHEMA)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_by_the_kept_columns_not_by_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each record parses to ~4.5 KB of Python objects; a kept row is ~150 bytes (numbers, codes, id).

    Measured as the growth of tracemalloc's peak between n and 2n rows, so the fixed buffers (a
    read block, a block of rows) cancel out.
    """
    monkeypatch.setattr(columns, "BLOCK_ROWS", 500)
    n = 4000
    small, large = tmp_path / "small", tmp_path / "large"
    _fat_firehose_file(small, n)
    _fat_firehose_file(large, 2 * n)
    per_row = (_peak_bytes(large) - _peak_bytes(small)) / n
    assert per_row < 1000, f"{per_row:.0f} bytes per row: records are being kept"


# --- duplicates ---------------------------------------------------------------------------------


def test_a_hash_collision_never_drops_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every row hashed alike, the exact comparison alone decides what is a duplicate."""
    rows = dirty_records(6)
    expected = reference_clean(rows, SCHEMA)
    monkeypatch.setattr(columns, "_mix", np.zeros_like)
    assert_cleaned_like_reference(preprocessing.clean(iter(rows), SCHEMA), expected)


def test_duplicates_compare_numbers_as_numbers() -> None:
    numeric = np.array([[0.0, np.nan], [-0.0, np.nan], [0.0, float("-nan")], [1.0, 2.0], [1.0, 2.0000001]])
    region = TextColumn(np.array([1, 1, 1, 1, 1], dtype=np.int32), (None, "north"))
    assert columns.first_copies(numeric, [region], None).tolist() == [0, 3, 4]
    assert columns.first_copies(numeric, [region], ["a", "b", "a", 1, 1]).tolist() == [0, 1, 3, 4]
    assert columns.first_copies(numeric, [region], [1, 1.0, "1", None, None]).tolist() == [0, 1, 2, 3, 4]


# --- reading ------------------------------------------------------------------------------------

LINE_BREAKS = b'{"a": 1}\r\n{"a": 2}\r{"a": 3}\n\n  \r\n{"a": 4}{"a": 5}\r\r\n{"a": 6}'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1 << 20])
def test_lines_are_cut_as_splitlines_cuts_the_whole(size: int) -> None:
    blocks = [LINE_BREAKS[i : i + size] for i in range(0, len(LINE_BREAKS), size)]
    assert list(chain.from_iterable(records._lines(blocks))) == LINE_BREAKS.splitlines()


@pytest.mark.parametrize("block", [1, 7, 1 << 20])
def test_records_and_line_numbers_do_not_depend_on_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(records, "READ_BLOCK", block)
    (tmp_path / "part").write_bytes(LINE_BREAKS + b"\r\n{'a': 7}\n")
    found: list[Any] = []
    with pytest.raises(UserError, match=r"raw file part line 9 is not JSON"):
        found.extend(records.RawReader(tmp_path))
    assert [r["a"] for r in found] == [1, 2, 3, 4, 5, 6]
    (tmp_path / "part").write_bytes(gzip.compress(LINE_BREAKS[:30]) + gzip.compress(LINE_BREAKS[30:]))
    reader = records.RawReader(tmp_path)
    assert [r["a"] for r in reader] == [1, 2, 3, 4, 5, 6] and reader.records == 6


def test_a_corrupt_gzip_file_is_reported_before_a_bad_line_in_it(tmp_path: Path) -> None:
    data = gzip.compress(b'{"a": 1}\nnot json\n' + b'{"a": 2}\n' * 50_000)
    (tmp_path / "part.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"raw file part.gz is not a valid gzip file \(Compressed file ended"):
        list(records.RawReader(tmp_path))


def test_a_file_without_records_is_no_data(tmp_path: Path) -> None:
    (tmp_path / "part").write_bytes(b"\n  \r\n")
    with pytest.raises(UserError, match="has 1 file\\(s\\) but no records"):
        list(records.RawReader(tmp_path))


# --- writing ------------------------------------------------------------------------------------


def test_csv_blocks_are_the_bytes_savetxt_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preprocessing, "CSV_BLOCK_ROWS", 7)
    rng = np.random.default_rng(0)
    n = 50
    matrix = np.zeros((n, 6), dtype=np.float32)
    matrix[:, 0] = rng.normal(size=n) * 10.0 ** rng.integers(-40, 38, n)
    matrix[::3, 1] = -0.0  # prints "-0": never looked up as a 0/1 column
    matrix[1::3, 1] = 1.0
    matrix[np.arange(n), 2 + rng.integers(0, 3, n)] = 1.0  # one-hot
    matrix[:, 5] = np.float32(1 / 3)
    labels = rng.integers(0, 2, n).astype(np.int8)
    blocks = ((labels[i : i + 7], matrix[i : i + 7]) for i in range(0, n, 7))
    preprocessing._write_csv(tmp_path / "new.csv", blocks)
    table = np.column_stack([labels.astype(np.float64), matrix.astype(np.float64)])
    np.savetxt(tmp_path / "savetxt.csv", table, fmt="%.9g", delimiter=",")
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "savetxt.csv").read_bytes()


def test_text_columns_encode_as_their_texts() -> None:
    pre = features.fit(
        dataset="toy", target="y", positive_class="yes", negative_class="no", id_column=None,
        numeric_names=["a"], numeric_train=np.array([[1.0], [2.0]]), categorical_names=["colour"],
        categorical_levels=[["red", "blue"]], standardize=False,
    )  # fmt: skip
    column = TextColumn(np.array([1, 0, 2, 1, 3], dtype=np.int32), (None, "red", "blue", "purple"))
    numeric = np.zeros((5, 1))
    assert np.array_equal(pre.encode(numeric, [column], unknown="ignore"), pre.encode(
        numeric, [column.texts()], unknown="ignore"
    ))  # fmt: skip
    with pytest.raises(features.UnknownCategory) as caught:
        pre.encode(numeric, [column])
    assert (caught.value.record, caught.value.value) == (4, "purple")
