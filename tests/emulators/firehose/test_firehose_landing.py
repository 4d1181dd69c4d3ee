"""``rookery local run --data``: a CSV or JSON-lines file checked against the schema and landed where
Firehose would put it (``emulators/firehose/landing.py``)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from emulators.core.home import LocalHome
from emulators.firehose import DataFileError, land
from emulators.firehose.landing import read_records
from stage import DataLayout, DatasetSchema

SCHEMA = DatasetSchema(
    name="penguins",
    target="sex",
    positive_class="female",
    numeric=("bill_length_mm", "body_mass_g"),
    categorical=("island",),
)


def test_csv_data_lands_as_firehose_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_text(
        "island,bill_length_mm,body_mass_g,sex,extra\nDream,39.1,NA,female,z\nBiscoe,x,3750,,y\n"
    )
    landed = land(LocalHome(tmp_path / "home"), source, schema=SCHEMA, layout=DataLayout(), raw_bucket="raw")
    assert landed.records == 2 and landed.delimiter == ","
    # A prefix of its own, outside the dataset's: a run without --data never reads it.
    assert landed.uri.startswith("s3://raw/uploads/penguins/") and landed.uri.endswith("/")
    assert landed.object_uri == f"{landed.uri}data.jsonl" and landed.size == landed.path.stat().st_size
    records = [json.loads(line) for line in landed.path.read_text().splitlines()]
    assert records[0] == {
        "island": "Dream",
        "bill_length_mm": 39.1,
        "body_mass_g": None,
        "sex": "female",
        "extra": "z",
    }
    assert (
        records[1]["bill_length_mm"] == "x"
        and records[1]["body_mass_g"] == 3750
        and records[1]["sex"] is None
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "d.csv",
            "island,bill_length,sex\nDream,3,male\n",
            r"the CSV header lacks 2 column\(s\) of the 'penguins' schema: 'bill_length_mm' "
            r"\(did you mean 'bill_length'\?\), 'body_mass_g'\.",
        ),
        ("d.jsonl", '{"island": "Dream"}\nnot json\n', "line 2 is not JSON"),
        ("d.jsonl", "[1, 2]\n", "line 1 is a JSON list, not a record"),
        (
            "d.jsonl",
            '{"island": "Dream", "sex": "male"}\n',
            r"every record lacks 2 column\(s\) of the 'penguins' schema: 'bill_length_mm', 'body_mass_g'",
        ),
        ("empty.csv", "", "the file is empty; give a CSV with a header and rows, or JSON lines"),
        ("blank.jsonl", "\n  \n", "the file is empty"),
        ("header.csv", "island,bill_length_mm,body_mass_g,sex\n", "the file has a header and no rows"),
        ("d.csv", "island,bill_length_mm,body_mass_g,sex\nDream,1,2,male,extra\n", "line 2 has 5 fields"),
    ],
)
def test_bad_data_is_refused_before_any_step_in_a_few_lines(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError, match=message) as raised:
        list(read_records(path, SCHEMA))
    assert len(str(raised.value).splitlines()) <= 2


def test_a_wide_header_is_shown_in_part_not_dumped(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"feature_{i}" for i in range(300)) + "\n" + ",".join("1" * 300) + "\n")
    with pytest.raises(DataFileError) as raised:
        read_records(path, SCHEMA)
    assert "The CSV header has 300: 'feature_0', 'feature_1'" in str(raised.value)
    assert "and 292 more" in str(raised.value) and len(str(raised.value)) < 500


@pytest.mark.parametrize(("delimiter", "shown"), [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_a_likely_delimiter_is_detected_and_used(tmp_path: Path, delimiter: str, shown: str) -> None:
    path = tmp_path / "export.csv"
    rows = [["island", "bill_length_mm", "body_mass_g", "sex"], ["Dream", "39,1", "3750", "female"]]
    path.write_text("\n".join(delimiter.join(r) for r in rows) + "\n")
    data = read_records(path, SCHEMA)
    assert data.delimiter == delimiter
    assert list(data) == [{"island": "Dream", "bill_length_mm": "39,1", "body_mass_g": 3750, "sex": "female"}]


def test_text_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("island,bill_length_mm,body_mass_g,sex\nDr\xe9am,1,2,male\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"is not UTF-8; save the file as UTF-8"):
        list(read_records(path, SCHEMA))
    with pytest.raises(DataFileError, match="no such file"):
        read_records(tmp_path / "missing.csv", SCHEMA)


def test_records_are_streamed_and_landing_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """The file is read a line at a time: the first record comes before a bad line further down, and
    landing 40,000 rows allocates about as much as landing 4,000."""
    path = tmp_path / "late.jsonl"
    path.write_text('{"island": "Dream"}\nnot json\n')
    records = iter(read_records(path, SCHEMA))
    assert next(records) == {"island": "Dream"}
    with pytest.raises(DataFileError, match="line 2 is not JSON"):
        next(records)

    def peak(rows: int) -> int:
        source = tmp_path / f"rows-{rows}.csv"
        line = "Dream,39.1,3750,female\n"
        source.write_text("island,bill_length_mm,body_mass_g,sex\n" + line * rows)
        tracemalloc.start()
        try:
            landed = land(
                LocalHome(tmp_path / f"h{rows}"), source, schema=SCHEMA, layout=DataLayout(), raw_bucket="raw"
            )
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert landed.records == rows

    small, large = peak(4_000), peak(40_000)
    assert large < 2 * small + 256 * 1024, (small, large)
