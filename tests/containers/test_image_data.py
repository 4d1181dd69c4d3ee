"""Records, the fitted preprocessor, the split and the request codec: pure logic, in process."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rookery_image import codec, features, records, splitting
from rookery_image.contract import UserError
from rookery_image.features import MISSING_LEVEL, Preprocessor

# --- field values -------------------------------------------------------------------------------


def test_numbers_share_one_rule_for_every_source() -> None:
    column, invalid = records.numbers([1, 2.5, None, "3.25", " 4 ", "", True])
    assert column[:2].tolist() == [1.0, 2.5] and math.isnan(column[2]) and column[3:5].tolist() == [3.25, 4.0]
    assert math.isnan(column[5]) and column[6] == 1.0 and invalid == []
    column, invalid = records.numbers([1.0, "heavy", [1], {"a": 1}, "1e999"])
    assert invalid == [1, 2, 3, 4] and all(math.isnan(v) for v in column[1:])


def test_categories_are_text() -> None:
    assert [records.category(v) for v in ("Dream", "", None, 2007, 2007.0, 2.5, True)] == [
        "Dream", None, None, "2007", "2007", "2.5", "true",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="a list is not a category"):
        records.category(["Dream"])


def test_read_raw_handles_firehose_output(tmp_path: Path) -> None:
    a = tmp_path / "penguins" / "ingest_date=2024-05-01" / "part-a"
    a.parent.mkdir(parents=True)
    a.write_text('{"x": 1}\n\n{"x": 2}{"x": 3}\n')  # a blank line; two records without a newline between
    b = a.with_name("part-b")  # gzip without a .gz name: detected by content
    b.write_bytes(gzip.compress(b'{"x": 4}\n') + gzip.compress(b'{"x": 5}\n'))  # two gzip members
    (tmp_path / "penguins" / ".hidden").write_text("ignored")
    errors = tmp_path / "errors" / "x" / "failed"
    errors.parent.mkdir(parents=True)
    errors.write_text("not json")
    raw = records.RawReader(tmp_path)
    assert [r["x"] for r in raw] == [1, 2, 3, 4, 5]
    assert raw.records == 5
    assert raw.files == ["penguins/ingest_date=2024-05-01/part-a", "penguins/ingest_date=2024-05-01/part-b"]
    assert raw.skipped == [{"path": "errors/x/failed", "reason": "Firehose error output (failed records)"}]


def test_read_raw_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no raw input folder"):
        records.RawReader(tmp_path / "absent")
    with pytest.raises(UserError, match="holds no data files"):
        list(records.RawReader(tmp_path))
    (tmp_path / "part").write_text('["not", "a", "record"]\n')
    with pytest.raises(UserError, match="raw file part line 1 holds a JSON list, not a record"):
        list(records.RawReader(tmp_path))


# --- preprocessor -------------------------------------------------------------------------------


def fitted(standardize: bool = False) -> Preprocessor:
    train = np.array([[1.0, 10.0], [np.nan, 20.0], [3.0, np.nan], [5.0, 40.0]])
    return features.fit(
        dataset="toy", target="y", positive_class="yes", negative_class="no", id_column=None,
        numeric_names=["a", "b"], numeric_train=train, categorical_names=["colour"],
        categorical_levels=[["red", "blue", "red", "green"]], standardize=standardize,
    )  # fmt: skip


def test_fit_imputes_with_training_medians_and_adds_a_missing_level() -> None:
    pre = fitted()
    assert [c.median for c in pre.numeric] == [3.0, 20.0]
    assert pre.categorical[0].levels == ("blue", "green", "red", MISSING_LEVEL)
    assert pre.feature_names == (
        "a",
        "b",
        "colour=blue",
        "colour=green",
        "colour=red",
        f"colour={MISSING_LEVEL}",
    )
    matrix = pre.encode(np.array([[np.nan, 15.0], [2.0, np.nan]]), [["red", None]])
    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[3.0, 15.0, 0, 0, 1, 0], [2.0, 20.0, 0, 0, 0, 1]]


def test_unknown_levels_are_refused_or_ignored() -> None:
    pre = fitted()
    with pytest.raises(features.UnknownCategory) as caught:
        pre.encode(np.zeros((2, 2)), [["red", "purple"]])
    assert (caught.value.record, caught.value.column, caught.value.value) == (1, "colour", "purple")
    ignored = pre.encode(np.zeros((2, 2)), [["red", "purple"]], unknown="ignore")
    assert ignored[1, 2:].tolist() == [0, 0, 0, 0]


def test_standardization_uses_training_statistics() -> None:
    pre = fitted(standardize=True)
    imputed = np.array([[1.0, 10.0], [3.0, 20.0], [3.0, 20.0], [5.0, 40.0]])
    encoded = pre.encode(imputed, [["red"] * 4])
    assert np.allclose(encoded[:, :2].mean(axis=0), 0, atol=1e-6)
    assert np.allclose(encoded[:, :2].std(axis=0), 1, atol=1e-6)


def test_artifact_round_trip_and_validation() -> None:
    pre = fitted(standardize=True)
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again == pre and again.feature_names == pre.feature_names
    with pytest.raises(ValueError, match="expected 'rookery-preprocessor/1'"):
        Preprocessor.from_dict({"format": "sklearn-pipeline"})
    broken = pre.to_dict()
    del broken["numeric"]
    with pytest.raises(ValueError, match="missing or malformed"):
        Preprocessor.from_dict(broken)


def test_a_numeric_column_without_training_values_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"numeric columns \['a'\] have no values"):
        features.fit(
            dataset="toy", target="y", positive_class="yes", negative_class="no", id_column=None,
            numeric_names=["a"], numeric_train=np.array([[np.nan], [np.nan]]), categorical_names=[],
            categorical_levels=[], standardize=False,
        )  # fmt: skip


# --- split --------------------------------------------------------------------------------------


def _split(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """Rows as their own units (content = the row number), split by the seed."""
    hashes = splitting.content_hashes(np.arange(len(labels), dtype=np.float64)[:, None], [], labels, seed)
    plan = splitting.plan(splitting.Units.of(hashes, labels), (0.7, 0.15, 0.15))
    split = splitting.assign(plan, hashes, labels)
    return [np.flatnonzero(split == k) for k in range(3)]


def test_split_is_stratified_seeded_and_complete() -> None:
    labels = np.array([1] * 100 + [0] * 900)
    parts = _split(labels, seed=42)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000)), "every row lands in exactly one split"
    assert [len(p) for p in parts] == [700, 150, 150]
    assert [int(labels[p].sum()) for p in parts] == [70, 15, 15]
    again = _split(labels, seed=42)
    other = _split(labels, seed=43)
    assert all((a == b).all() for a, b in zip(parts, again, strict=True))
    assert not (parts[0] == other[0]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.7,0.3", "has 2 parts"),
        ("0.7,0.2,0.2", "adds up to 1.1"),
        ("a,b,c", "three numbers"),
        ("1,0,0", "between 0 and 1"),
    ],
)
def test_split_fraction_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        splitting.parse_fractions(text)


# --- request codec ------------------------------------------------------------------------------


def test_csv_and_json_decode_to_the_same_batch() -> None:
    pre = fitted()
    csv_batch = codec.decode_csv(b'1.5,,red\n"2",20,\n', pre)
    records = [{"a": 1.5, "b": None, "colour": "red"}, {"a": "2", "b": 20, "colour": None, "y": "yes"}]
    json_batch = codec.decode_json(json.dumps(records).encode(), pre)
    lines_batch = codec.decode_jsonlines(
        b'{"a": 1.5, "b": "", "colour": "red"}\n{"a": 2, "b": 20, "colour": ""}\n', pre
    )
    for batch in (json_batch, lines_batch):
        assert np.array_equal(batch.numeric, csv_batch.numeric, equal_nan=True)
        assert batch.categories == csv_batch.categories == [["red", None]]


# Every character str.splitlines() would also cut a line at, other than "\n" and "\r".
NOT_LINE_BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", NOT_LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in NOT_LINE_BREAKS])
@pytest.mark.parametrize("quoted", [False, True], ids=["split path", "csv path"])
def test_csv_records_end_at_newline_only(char: str, quoted: bool) -> None:
    """A form feed (and the like) inside a value is part of the value, not a record break."""
    pre = fitted()
    value = f'"re{char}d"' if quoted else f"re{char}d"
    batch = codec.decode_csv(f"1,2,{value}\n3,4,blue\n".encode(), pre)
    assert batch.size == 2 and batch.categories == [[f"re{char}d", "blue"]]
    # So unknown-category handling applies to it: refused by default, encoded as no level on request.
    with pytest.raises(features.UnknownCategory) as caught:
        pre.encode(batch.numeric, batch.categories)
    assert caught.value.record == 0 and caught.value.value == f"re{char}d"
    matrix = pre.encode(batch.numeric, batch.categories, unknown="ignore")
    assert matrix[0, 2:].tolist() == [0, 0, 0, 0] and matrix[1, 2:].tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,red\r\n\r\n  \n,,\r\n3,4,blue",  # CRLF, a blank and a whitespace-only line, no final newline
        b'"1",2,red\r\n\r\n  \n,,\r\n3,"4",blue',
        b'1,2,"red"\r\n\r\n"  "\n"",,\r\n3,4,blue',
    ],
    ids=["split path", "csv path", "csv path, quoted blanks"],
)
def test_csv_paths_agree_on_records(body: bytes) -> None:
    """Both paths drop the same blank lines and keep a line of empty fields as a record of missing values."""
    batch = codec.decode_csv(body, fitted())
    assert batch.categories == [["red", None, "blue"]]
    assert np.array_equal(batch.numeric, np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]]), equal_nan=True)


@pytest.mark.parametrize(
    "body",
    [b"1,2,red\n\n3,4,bl\rue\n", b'1,2,"red"\n\n3,4,bl\rue\n'],
    ids=["split path", "csv path"],
)
def test_csv_lone_carriage_return_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_csv(body, fitted())
    error = caught.value
    assert error.status == 400 and error.record == 2
    assert error.message.startswith(
        r"record 2 (line 3) is not valid CSV: a carriage return (\r) inside an unquoted field; quote a field"
    )
    assert error.message.endswith(r"end records with \n or \r\n")


def test_csv_long_quoted_value_is_a_value_and_csv_errors_are_payload_errors() -> None:
    """csv's own 128 KB field limit is lifted to the payload limit; beyond that csv.Error is still a 400."""
    pre = fitted()
    long = "x" * (200 * 1024)
    batch = codec.decode_csv(f'1,2,red\n1,2,"{long}"\n'.encode(), pre)
    assert batch.categories == [["red", long]]
    huge = "x" * (codec.MAX_PAYLOAD_BYTES + 1)  # only reachable in process: HTTP refuses it first (413)
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_csv(f'1,2,red\n1,2,"{huge}"\n'.encode(), pre)
    assert caught.value.status == 400 and caught.value.record == 2
    message = caught.value.message
    assert message.startswith("record 2 (line 2) is not valid CSV: field larger than field limit")
    assert "quote a field that holds a comma" in message


def test_media_types() -> None:
    assert codec.request_format("text/csv; charset=utf-8") == "csv"
    assert codec.request_format("application/x-jsonlines") == "jsonlines"
    assert codec.response_format(None, "csv") == "csv"
    assert codec.response_format("*/*", "json") == "json"
    assert codec.response_format("text/html, application/jsonlines;q=0.9", "csv") == "jsonlines"
    with pytest.raises(codec.PayloadError) as caught:
        codec.response_format("text/html", "csv")
    assert caught.value.status == 406


ACCEPT = {
    "*/* keeps the request's format": ("*/*", "json", "json"),
    "text/* picks CSV": ("text/*", "json", "csv"),
    "application/* keeps JSON lines": ("application/*", "jsonlines", "jsonlines"),
    "application/* from CSV": ("application/*", "csv", "json"),
    "q orders the ranges": ("text/*;q=0.5, application/json;q=0.4", "json", "csv"),
    "q=0 excludes the exact type": ("application/json;q=0, */*", "json", "csv"),
    "a more specific range decides": ("text/csv;q=0, */*;q=0.1", "csv", "json"),
    "ties go to the request's format": ("application/json, text/csv", "csv", "csv"),
    "then to the first named": ("application/jsonl, text/csv", "json", "jsonlines"),
    "case and spaces": (" Text/CSV ; Q=0.8 ", "json", "csv"),
    "parameters other than q": ("text/csv;charset=utf-8", "json", "csv"),
    "unsupported first": ("image/png, text/*;q=0.2", "json", "csv"),
}


@pytest.mark.parametrize(("accept", "request_fmt", "answer"), ACCEPT.values(), ids=ACCEPT.keys())
def test_accept_media_ranges_and_q_values_follow_rfc_9110(accept: str, request_fmt: str, answer: str) -> None:
    assert codec.response_format(accept, request_fmt) == answer


@pytest.mark.parametrize(
    ("accept", "status", "message"),
    [
        ("*/*;q=0", 406, "admits no supported type"),
        ("text/csv;q=0, application/*;q=0", 406, "admits no supported type"),
        ("text/html, image/*", 406, "admits no supported type"),
        ("text/csv;q=2", 400, "q=2 is not a quality from 0 to 1"),
        ("text/csv;q=high", 400, "q=high is not a quality from 0 to 1"),
        ("csv", 400, "'csv' is not a media range such as text/csv or text/*"),
        ("*/csv", 400, "'*/csv' is not a media range"),
    ],
)
def test_accept_refusals_name_the_problem(accept: str, status: int, message: str) -> None:
    with pytest.raises(codec.PayloadError) as caught:
        codec.response_format(accept, "csv")
    assert caught.value.status == status and message in caught.value.message


@pytest.mark.parametrize(
    ("body", "record", "line"),
    [
        ('1,2,"red\n1,2,blue\n', 1, 1),
        ('1,2,red\n\n1,2,"blue\n1,2,green\n', 2, 3),
        ('1,2,"re""d"\n1,2,"blue\n', 2, 2),
    ],
)
def test_csv_unclosed_quote_is_reported_as_such(body: str, record: int, line: int) -> None:
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_csv(body.encode(), fitted())
    assert caught.value.status == 400 and caught.value.record == record
    assert caught.value.message.startswith(
        f"record {record} (line {line}) is not valid CSV: "
        'a quoted field there is never closed (an unclosed ")'
    )


def test_csv_is_read_as_rfc_4180_reads_it() -> None:
    """A quote inside an unquoted field is a character; text after a closing quote is an error."""
    batch = codec.decode_csv(b'1,2,"red"\n1,2,bl"ue\n', fitted())
    assert batch.categories == [["red", 'bl"ue']]
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_csv(b'1,2,red\n1,2,"re"d\n', fitted())
    assert caught.value.message.startswith("record 2 (line 2) is not valid CSV: ',' expected after '\"'")


def big_json_list(records: list[dict[str, object]]) -> bytes:
    """A JSON list of ``records`` repeated past the size above which a body is read a record at a time."""
    one = json.dumps(records)[1:-1].encode()
    copies = codec.JSON_STREAM_BYTES // len(one) + 1
    return b"[\n " + b",\n ".join([one] * copies) + b"\n]\n"


def test_a_large_json_list_is_read_a_record_at_a_time_into_the_same_batch() -> None:
    pre = fitted()
    records: list[dict[str, object]] = [
        {"a": 1.5, "b": None, "colour": "red"},
        {"a": -2, "b": 20, "colour": None},
    ]
    body = big_json_list(records)
    assert len(body) > codec.JSON_STREAM_BYTES
    streamed = codec.decode_json(body, pre)
    whole = codec.decode_json(json.dumps(records * (streamed.size // 2)).encode(), pre)
    assert streamed.size == whole.size > 1000
    assert np.array_equal(streamed.numeric, whole.numeric, equal_nan=True)
    assert streamed.categories == whole.categories


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"", "the body is not valid JSON: expected ',' or ']'"),
        (b",", "the body is not valid JSON: Expecting value"),
        (b"]]", "the body is not valid JSON: unexpected content"),
        (b"}", "the body is not valid JSON: expected ',' or ']'"),
    ],
    ids=["cut short", "trailing comma", "trailing data", "wrong closer"],
)
def test_a_large_malformed_json_list_is_refused(tail: bytes, message: str) -> None:
    body = big_json_list([{"a": 1, "b": 2, "colour": "red"}]).rstrip()[:-1] + tail
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_json(body, fitted())
    assert caught.value.status == 400 and caught.value.message.startswith(message), caught.value.message


def test_a_large_json_list_refuses_nan_and_names_the_bad_record() -> None:
    body = big_json_list([{"a": 1, "b": 2, "colour": "red"}])
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_json(body.replace(b'"a": 1', b'"a": NaN', 1), fitted())
    assert caught.value.message == "the body is not valid JSON: NaN is not a JSON value"
    records: list[dict[str, object]] = [{"a": 1, "b": 2, "colour": "red"}] * 9000 + [
        {"a": 1, "colour": "red"}
    ]
    with pytest.raises(codec.PayloadError) as caught:
        codec.decode_json(json.dumps(records).encode(), fitted())
    assert caught.value.record == 9001 and "lacks field(s) ['b']" in caught.value.message


def test_encode_in_every_format() -> None:
    probabilities = np.array([0.1234567, 0.9])
    positive = probabilities >= 0.5
    assert codec.encode(probabilities, positive, ("no", "yes"), "csv") == b"0.123457,no\n0.9,yes\n"
    assert json.loads(codec.encode(probabilities, positive, ("no", "yes"), "json")) == {
        "predictions": [{"probability": 0.123457, "label": "no"}, {"probability": 0.9, "label": "yes"}]
    }
    assert codec.encode(probabilities, positive, ("no", "yes, really"), "csv").endswith(
        b'0.9,"yes, really"\n'
    )
    lines = codec.encode(probabilities, positive, ("no", "yes"), "jsonlines").decode().splitlines()
    assert [json.loads(line)["label"] for line in lines] == ["no", "yes"]
