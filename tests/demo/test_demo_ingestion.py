"""Ingestion: the bundled penguins and deliberately invalid records through the real Firehose transform
into the local raw bucket, exactly as Firehose writes them (prefixes, object names, error records).
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from demo_testing import ARRIVAL, JobsRun, files_under

from emulators.core.home import LocalHome
from emulators.firehose import Delivery, DeliveryStream, IngestionError, deliver
from emulators.firehose.responses import PROCESSING_FAILED_CODE
from emulators.s3 import LocalS3
from rookery.demo.dataset import DemoDataError, bundled_rows, demo_records, invalid_records
from rookery_contracts.ingest import DELIVERY_COMPRESSION, TRANSFORM_BUFFER_MIB
from stage import DatasetSchema, Stage

pytestmark = pytest.mark.xdist_group("demo-ingest")

# <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>, Firehose's object name suffix.
OBJECT_NAME = re.compile(
    r"^rookery-dev-penguins-ingest-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f\-]{36}$"
)
ERROR_RECORD_KEYS = {
    "attemptsMade",
    "arrivalTimestamp",
    "errorCode",
    "errorMessage",
    "attemptEndingTimestamp",
    "rawData",
    "lambdaArn",
}


def lines(path: Path) -> list[str]:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode().splitlines()


# --- the records ----------------------------------------------------------------------------------


def test_the_bundled_rows_are_the_344_penguins_with_nulls_and_numbers(dev: Stage) -> None:
    rows = bundled_rows(dev.dataset)

    assert len(rows) == 344
    assert rows[0] == {
        "species": "Adelie",
        "island": "Torgersen",
        "bill_length_mm": 39.1,
        "bill_depth_mm": 18.7,
        "flipper_length_mm": 181,
        "body_mass_g": 3750,
        "sex": "male",
        "year": 2007,
    }
    assert rows[3]["bill_length_mm"] is None and rows[3]["sex"] is None  # "NA" in the CSV
    assert all(isinstance(r["body_mass_g"], int | float | type(None)) for r in rows)
    assert {r["sex"] for r in rows} == {"male", "female", None}


def test_a_schema_naming_other_columns_is_refused_with_the_fix(dev: Stage) -> None:
    other = DatasetSchema(name="loans", target="defaulted", positive_class="yes", numeric=("income",))

    with pytest.raises(DemoDataError) as caught:
        bundled_rows(other)

    message = str(caught.value)
    assert "['income', 'defaulted']" in message
    assert "penguins" in message and "--stage dev" in message


def test_numeric_columns_stay_text_only_when_the_schema_says_text(dev: Stage) -> None:
    text = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n" + (
        "Adelie,7,NA,18,181,3750,2007,2007\n"
    )
    (row,) = bundled_rows(dev.dataset, text)

    assert row["island"] == "7" and row["sex"] == "2007"  # categorical and target: text
    assert row["year"] == 2007 and row["bill_depth_mm"] == 18 and row["bill_length_mm"] is None


def test_each_invalid_record_says_why_and_they_are_spread_among_the_rows(dev: Stage) -> None:
    records = demo_records(dev.dataset)
    invalid = [i for i, r in enumerate(records) if r.invalid_because]

    assert len(records) == 344 + len(invalid_records(dev.dataset, bundled_rows(dev.dataset)[0]))
    assert len(invalid) == 5
    assert invalid[0] > 0 and invalid[-1] < len(records) - 1
    assert all(b - a > 20 for a, b in itertools.pairwise(invalid))


# --- delivery through the real handler ---------------------------------------------------------------


def test_every_record_is_accounted_for(dev: Stage, delivered: tuple[LocalHome, Delivery]) -> None:
    _, delivery = delivered

    assert delivery.records_in == 349
    assert delivery.records_in == delivery.ok + delivery.failed + delivery.dropped
    assert (delivery.ok, delivery.failed, delivery.dropped) == (344, 5, 0)
    assert delivery.invocations == 1  # 349 small records fit the transform's 1 MiB buffer


def test_ok_records_land_under_the_date_partition_with_firehose_names(
    dev: Stage, delivered: tuple[LocalHome, Delivery]
) -> None:
    home, delivery = delivered
    partition = dev.data.layout.partition(dev.dataset, "2024-05-01")
    assert delivery.data_prefix == f"s3://rookery-dev-raw/{partition}"

    objects = files_under(home, f"s3://rookery-dev-raw/{dev.dataset.name}/")

    assert [LocalS3(home).uri(p) for p in objects] == list(delivery.data_objects)
    assert all(LocalS3(home).uri(p).startswith(delivery.data_prefix) for p in objects)
    assert all(OBJECT_NAME.match(p.name) for p in objects), [p.name for p in objects]
    records = [json.loads(line) for p in objects for line in lines(p)]
    assert len(records) == 344
    assert list(records[0]) == [*dev.dataset.columns, "_ingest_ts", "_firehose_record_id"]
    assert {r["_ingest_ts"] for r in records} == {"2024-05-01T12:30:15.250Z"}
    assert "year" not in records[0]  # fields outside the schema are not kept


def test_failed_records_land_under_the_error_prefix_in_firehose_error_format(
    dev: Stage, delivered: tuple[LocalHome, Delivery]
) -> None:
    home, delivery = delivered
    stream = DeliveryStream.for_stage(dev)
    assert delivery.error_prefix == "s3://rookery-dev-raw/errors/processing-failed/ingest_date=2024-05-01/"

    objects = files_under(home, "s3://rookery-dev-raw/errors/")

    assert [LocalS3(home).uri(p) for p in objects] == list(delivery.error_objects)
    assert all(OBJECT_NAME.match(p.name) for p in objects)
    entries = [json.loads(line) for p in objects for line in lines(p)]
    assert len(entries) == 5
    assert all(set(e) == ERROR_RECORD_KEYS for e in entries)
    assert {e["errorCode"] for e in entries} == {PROCESSING_FAILED_CODE}
    assert {e["attemptsMade"] for e in entries} == {1}
    assert {e["arrivalTimestamp"] for e in entries} == {int(ARRIVAL.timestamp() * 1000)}
    assert all(e["attemptEndingTimestamp"] >= e["arrivalTimestamp"] for e in entries)
    assert {e["lambdaArn"] for e in entries} == {stream.function_arn}
    sent_invalid = [r.payload for r in demo_records(dev.dataset) if r.invalid_because]
    assert [base64.b64decode(e["rawData"]) for e in entries] == sent_invalid


def test_the_reasons_are_the_handlers_own_from_its_log(
    dev: Stage, delivered: tuple[LocalHome, Delivery]
) -> None:
    _, delivery = delivered
    reasons = [f.reason for f in delivery.failures]
    planted = [i for i, r in enumerate(demo_records(dev.dataset)) if r.invalid_because]

    assert len(reasons) == 5
    assert "'body_mass_g' must be a JSON number or null, got string" in reasons[0]
    assert "'species' is a blank string" in reasons[1]
    assert reasons[2].startswith("not valid JSON")
    assert reasons[3].startswith("carries none of the dataset's columns")
    assert "'sex' (the target) is a blank string" in reasons[4]
    assert all(f.error_object == delivery.error_objects[0] for f in delivery.failures)
    assert [f.position for f in delivery.failures] == planted


def test_the_real_handler_ran_with_the_functions_environment(
    dev: Stage, delivered: tuple[LocalHome, Delivery]
) -> None:
    _, delivery = delivered
    log = [
        json.loads(line) for line in Path(delivery.log_path).read_text().splitlines() if line.startswith("{")
    ]

    batch = [e for e in log if e.get("message") == "batch transformed"]
    assert len(batch) == 1 and batch[0]["records"] == 349 and batch[0]["failed"] == 5
    assert batch[0]["service"] == "firehose_transform" and batch[0]["cold_start"] is True
    assert batch[0]["function_name"] == DeliveryStream.for_stage(dev).function_name
    emf = next(e for e in log if "RecordsIn" in e)  # Powertools metrics, namespace from the construct's env
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == dev.qualifier
    assert (emf["RecordsIn"], emf["RecordsOk"], emf["RecordsFailed"]) == ([349.0], [344.0], [5.0])


def test_preprocess_reads_the_delivered_objects_and_skips_nothing(jobs: JobsRun) -> None:
    report = json.loads(jobs.data_report.read_text())
    assert report["files"]["read"] == 1 and report["files"]["skipped"] == []
    assert report["rows"]["read"] == 344


# --- batching, object size, compression -------------------------------------------------------


def test_small_buffers_mean_more_invocations_and_objects_and_nothing_lost(tmp_path: Path, dev: Stage) -> None:
    home = LocalHome(tmp_path)
    stream = replace(DeliveryStream.for_stage(dev), transform_batch_bytes=4_000, object_bytes=10_000)

    delivery = deliver(
        demo_records(dev.dataset), stream, home, log_path=tmp_path / "transform.log", arrival=ARRIVAL
    )

    assert delivery.invocations > 5 and (delivery.ok, delivery.failed) == (344, 5)
    objects = [LocalS3(home).path(u) for u in delivery.data_objects]
    assert len(objects) > 3
    assert all(p.stat().st_size <= 10_000 for p in objects)
    assert sum(len(lines(p)) for p in objects) == 344
    assert len({f.invocation for f in delivery.failures}) == 5  # one invalid record per batch here
    assert "(the function logged no reason)" not in {f.reason for f in delivery.failures}


def test_gzip_objects_are_named_gz_and_hold_json_lines(tmp_path: Path, dev: Stage) -> None:
    home = LocalHome(tmp_path)
    stream = DeliveryStream.for_stage(dev, compression="GZIP")

    delivery = deliver(demo_records(dev.dataset), stream, home, log_path=tmp_path / "t.log", arrival=ARRIVAL)

    paths = [LocalS3(home).path(u) for u in (*delivery.data_objects, *delivery.error_objects)]
    assert all(p.name.endswith(".gz") for p in paths)
    assert sum(len(lines(p)) for p in paths) == 349


def test_the_stream_batches_and_writes_as_the_ingest_contract_says(dev: Stage) -> None:
    """The construct deploys the same values (tests/infra/test_infra_data.py reads them from the template)."""
    stream = DeliveryStream.for_stage(dev)

    assert stream.transform_batch_bytes == TRANSFORM_BUFFER_MIB * 1024 * 1024 == 1024 * 1024
    assert stream.compression == DELIVERY_COMPRESSION == "UNCOMPRESSED"
    assert stream.object_bytes == dev.data.firehose_buffer_mib * 1024 * 1024


def test_a_function_that_cannot_start_fails_ingestion_with_its_own_message(
    tmp_path: Path, dev: Stage
) -> None:
    stream = replace(DeliveryStream.for_stage(dev), schema_json='{"name": "penguins"}')

    with pytest.raises(IngestionError) as caught:
        deliver(demo_records(dev.dataset)[:3], stream, LocalHome(tmp_path), log_path=tmp_path / "t.log")

    message = str(caught.value)
    assert "failed to start" in message and str(tmp_path / "t.log") in message
    assert "ROOKERY_DATASET_SCHEMA" in message and "target: required field is missing" in message
    assert not (tmp_path / "s3").exists()  # nothing delivered


def test_without_the_functions_code_ingestion_says_where_it_looked(
    tmp_path: Path, dev: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("emulators.firehose.transform.LAMBDAS_DIR", tmp_path / "lambdas")

    with pytest.raises(
        IngestionError, match=r"lambdas/firehose_transform; run the demo from a rookery checkout"
    ):
        deliver(
            demo_records(dev.dataset)[:3],
            DeliveryStream.for_stage(dev),
            LocalHome(tmp_path),
            log_path=tmp_path / "t.log",
        )
