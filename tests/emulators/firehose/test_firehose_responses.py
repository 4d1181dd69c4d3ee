"""Firehose on the wire (``emulators/firehose/responses.py``): the transformation response checked
against the records sent, and what Firehose writes to S3: prefixes evaluated, objects named."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from emulators.firehose import IngestionError
from emulators.firehose.responses import answered, evaluate_prefix, object_name
from stage import Stage, load_stage

ARRIVAL = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC)
SENT = [{"recordId": "0"}, {"recordId": "1"}]


@pytest.fixture(scope="module")
def dev() -> Stage:
    return load_stage("dev")


def test_the_construct_prefix_templates_evaluate_to_the_layouts_partition(dev: Stage) -> None:
    layout = dev.data.layout

    assert evaluate_prefix(layout.firehose_prefix(dev.dataset), timestamp=ARRIVAL) == layout.partition(
        dev.dataset, "2024-05-01"
    )
    assert (
        evaluate_prefix(
            layout.firehose_error_prefix(), timestamp=ARRIVAL, error_output_type="processing-failed"
        )
        == "errors/processing-failed/ingest_date=2024-05-01/"
    )
    assert evaluate_prefix("y=!{timestamp:yyyy}/h=!{timestamp:HH}/", timestamp=ARRIVAL) == "y=2024/h=12/"
    assert object_name("s", ARRIVAL, "id", "GZIP") == "s-1-2024-05-01-12-30-15-id.gz"


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("!{partitionKeyFromQuery:region}/", "not supported locally"),
        ("!{timestamp:EEE}/", "use yyyy, MM, dd, HH, mm, ss"),
        ("!{firehose:error-output-type}/", "outside an error prefix"),
    ],
)
def test_prefix_expressions_the_demo_cannot_evaluate_are_refused(template: str, words: str) -> None:
    with pytest.raises(IngestionError, match=re.escape(words)):
        evaluate_prefix(template, timestamp=ARRIVAL)


def test_the_answer_for_each_record_comes_back_in_the_order_sent() -> None:
    response = {"records": [{"recordId": "1", "result": "Dropped"}, {"recordId": "0", "result": "Ok"}]}

    assert [r["result"] for r in answered(1, SENT, response)] == ["Ok", "Dropped"]


@pytest.mark.parametrize(
    ("records", "words"),
    [
        (
            [{"recordId": "0", "result": "Ok"}],
            "invocation 3: the answered record ids do not match the 2 sent",
        ),
        (
            [{"recordId": "0", "result": "Ok"}, {"recordId": "2", "result": "Ok"}],
            "answer every record once with its recordId",
        ),
        (
            [{"recordId": "0", "result": "Ok"}, {"recordId": "1", "result": "Maybe"}],
            "invocation 3, record 1: result 'Maybe' is not one of",
        ),
    ],
)
def test_an_answer_out_of_contract_is_refused_naming_the_invocation(
    records: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(IngestionError, match=re.escape(words)):
        answered(3, SENT, {"records": records})
