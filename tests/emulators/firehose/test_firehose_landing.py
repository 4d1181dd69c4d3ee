"""``rookery local run --data``: a CSV or JSON-lines file checked against the schema and landed where
Firehose would put it (``emulators/firehose/landing.py``)."""

from __future__ import annotations

import json
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
    assert landed.records == 2
    assert landed.uri.startswith("s3://raw/penguins/ingest_date=")
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
        ("d.csv", "island,sex\nDream,male\n", r"no column\(s\) \['bill_length_mm', 'body_mass_g'\]"),
        ("d.jsonl", '{"island": "Dream"}\nnot json\n', "line 2 is not JSON"),
        ("d.jsonl", "[1, 2]\n", "line 1 is a JSON list, not a record"),
        (
            "d.jsonl",
            '{"island": "Dream", "sex": "male"}\n',
            r"no record has the field\(s\) \['bill_length_mm'",
        ),
    ],
)
def test_data_without_the_schemas_columns_is_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError, match=message):
        read_records(path, SCHEMA)


def test_an_empty_data_file_is_left_for_preprocess_to_judge(tmp_path: Path) -> None:
    for name in ("empty.csv", "empty.jsonl"):
        path = tmp_path / name
        path.write_text("")
        assert read_records(path, SCHEMA) == []
    with pytest.raises(DataFileError, match="no such file"):
        read_records(tmp_path / "missing.csv", SCHEMA)
