"""Data capture in SageMaker's format: every line's shape, encodings, sampling, files after stop.

The writer is driven directly here (no model server); ``test_runtime_deployment.py`` checks the
capture an endpoint writes while boto3 clients call it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.core.errors import EndpointError
from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from emulators.sagemaker_runtime.capture import (
    Captured,
    CaptureSettings,
    CaptureWriter,
    capture_record,
    decode_data,
)
from stage.capture import capture_key, capture_opened, text_encoding

DESTINATION = "s3://rookery-dev-raw/capture"
WHEN = dt.datetime(2024, 5, 1, 10, 17, 3, 250_000, tzinfo=dt.UTC)
FILE_KEY = re.compile(
    r"^capture/(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<h>\d\d)/"
    r"\d\d-\d\d-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.jsonl$"
)


def check_line(line: str) -> dict[str, Any]:
    """Assert one capture line has exactly SageMaker's shape; return it parsed."""
    record = json.loads(line)
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
    assert record["eventVersion"] == "0"
    data = record["captureData"]
    assert set(data) == {"endpointInput", "endpointOutput"}
    for key, mode in (("endpointInput", "INPUT"), ("endpointOutput", "OUTPUT")):
        payload = data[key]
        assert set(payload) == {"observedContentType", "mode", "data", "encoding"}
        assert payload["mode"] == mode
        assert payload["encoding"] in ("CSV", "JSON", "BASE64")
        assert isinstance(payload["data"], str)
        decode_data(payload)  # BASE64 data is valid base64
    metadata = record["eventMetadata"]
    assert set(metadata) <= {"eventId", "inferenceId", "inferenceTime"}
    assert uuid.UUID(metadata["eventId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata["inferenceTime"])
    return dict(record)


def capture_lines(home: LocalHome) -> Iterator[tuple[str, str]]:
    """(key under the raw bucket, line) for every captured line."""
    root = LocalS3(home).path("s3://rookery-dev-raw/capture")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = path.relative_to(LocalS3(home).path("s3://rookery-dev-raw/x").parent).as_posix()
            for line in path.read_text(encoding="utf-8").splitlines():
                yield key, line


def item(
    *,
    request: bytes = b"39.1,18.7,181,3750,Adelie,Torgersen\n",
    request_type: str | None = "text/csv",
    response: bytes = b"0.12,male\n",
    response_type: str | None = "text/csv; charset=utf-8",
    inference_id: str | None = None,
    at: dt.datetime = WHEN,
) -> Captured:
    return Captured(request_type, request, response_type, response, at, inference_id)


def writer(home: LocalHome, tmp_path: Path, percent: int = 100, **kwargs: Any) -> CaptureWriter:
    capture = CaptureWriter(
        home,
        CaptureSettings(DESTINATION, percent),
        endpoint="rookery-dev-local",
        variant="primary",
        staging=tmp_path / "staging",
        **kwargs,
    )
    capture.start()
    return capture


def test_encodings_follow_the_capture_content_types() -> None:
    assert text_encoding("text/csv") == "CSV"
    assert text_encoding("text/csv; charset=utf-8") == "CSV"
    assert text_encoding("application/json") == "JSON"
    assert text_encoding("Application/JSONLines") == "JSON"
    assert text_encoding("image/png") == "BASE64"
    assert text_encoding(None) == "BASE64"


def test_a_capture_record_is_sagemakers_line() -> None:
    record = capture_record(item(inference_id="order-17"), "a1b2c3d4-0000-4000-8000-000000000000")
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "39.1,18.7,181,3750,Adelie,Torgersen\n",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.12,male\n",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {
            "eventId": "a1b2c3d4-0000-4000-8000-000000000000",
            "inferenceId": "order-17",
            "inferenceTime": "2024-05-01T10:17:03Z",
        },
        "eventVersion": "0",
    }
    # Without an InferenceId there is no inferenceId key (not an empty one).
    assert "inferenceId" not in capture_record(item(), "x")["eventMetadata"]


def test_payloads_that_are_not_listed_text_are_base64() -> None:
    binary = b"\x89PNG\r\n\x00\xff"
    record = capture_record(item(request=binary, request_type="image/png"), "x")
    payload = record["captureData"]["endpointInput"]
    assert payload["encoding"] == "BASE64" and base64.b64decode(payload["data"]) == binary
    # A listed text type whose bytes are not UTF-8 is kept as base64 too, never mangled.
    latin = capture_record(item(request="é,1\n".encode("latin-1")), "x")["captureData"]["endpointInput"]
    assert latin["encoding"] == "BASE64" and decode_data(latin) == "é,1\n".encode("latin-1")
    json_out = capture_record(item(response=b'{"predictions": []}', response_type="application/json"), "x")
    assert json_out["captureData"]["endpointOutput"]["encoding"] == "JSON"


def test_the_file_key_is_sagemakers_layout() -> None:
    key = capture_key(
        "capture/", "rookery-dev-endpoint", "primary", WHEN, "f" * 8 + "-0000-4000-8000-" + "0" * 12
    )
    assert key == (
        "capture/rookery-dev-endpoint/primary/2024/05/01/10/17-03-250-ffffffff-0000-4000-8000-000000000000.jsonl"
    )
    assert FILE_KEY.match(key)
    # The file's start is read back from its name (to the millisecond), as a window is chosen.
    assert capture_opened(key) == WHEN
    assert capture_opened(f"s3://rookery-dev-raw/{key}") == WHEN
    assert capture_opened("capture/rookery-dev-endpoint/primary/2024/05/01/10/notes.txt") is None
    assert capture_opened("capture/e/primary/2024/13/01/10/17-03-250-x.jsonl") is None  # no 13th month


def test_a_roll_publishes_what_came_before_and_starts_a_new_file_after(
    home: LocalHome, tmp_path: Path
) -> None:
    capture = writer(home, tmp_path, roll_seconds=3600)
    try:
        for i in range(3):
            capture.offer(item(inference_id=f"before-{i}", at=WHEN))
        capture.roll()
        [before] = capture.files
        assert LocalS3(home).path(before).read_text().count("\n") == 3  # published whole at the roll
        capture.offer(item(inference_id="after", at=WHEN + dt.timedelta(seconds=1)))
        capture.roll()
        capture.roll()  # nothing open: publishes nothing
    finally:
        capture.stop()
    assert capture.files[0] == before and len(capture.files) == 2
    lines = LocalS3(home).path(capture.files[1]).read_text().splitlines()
    assert [json.loads(line)["eventMetadata"]["inferenceId"] for line in lines] == ["after"]
    with pytest.raises(EndpointError, match="the capture writer is not running"):
        capture.roll()


def test_every_line_is_written_whole_and_files_are_complete_after_stop(
    home: LocalHome, tmp_path: Path
) -> None:
    capture = writer(home, tmp_path, roll_seconds=0.05)

    def produce(n: int) -> None:
        for i in range(200):
            capture.offer(item(inference_id=f"{n}-{i}", request=f"{n},{i}\n".encode()))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capture.stop()
    lines = list(capture_lines(home))
    assert capture.captured == 800 and capture.dropped == 0
    assert sorted(check_line(line)["eventMetadata"]["inferenceId"] for _, line in lines) == sorted(
        f"{n}-{i}" for n in range(4) for i in range(200)
    )
    keys = {key for key, _ in lines}
    assert all(FILE_KEY.match(key) for key in keys)
    assert {FILE_KEY.match(key)["h"] for key in keys} == {"10"}  # type: ignore[index]
    assert len(capture.files) == len(keys)
    assert not list((tmp_path / "staging").iterdir())  # nothing left half-written


def test_files_roll_at_the_hour_of_the_invocations(home: LocalHome, tmp_path: Path) -> None:
    capture = writer(home, tmp_path)
    capture.offer(item(at=WHEN))
    capture.offer(item(at=WHEN + dt.timedelta(hours=1)))
    capture.stop()
    hours = sorted(FILE_KEY.match(key)["h"] for key, _ in capture_lines(home))  # type: ignore[index]
    assert hours == ["10", "11"]


def test_a_full_queue_drops_captures_and_never_blocks_the_request(home: LocalHome, tmp_path: Path) -> None:
    capture = CaptureWriter(
        home,
        CaptureSettings(DESTINATION, 100),
        endpoint="e",
        variant="primary",
        staging=tmp_path / "staging",
        queue_size=3,
    )  # not started: nothing drains the queue
    accepted = [capture.offer(item()) for _ in range(5)]
    assert accepted == [True, True, True, False, False] and capture.dropped == 2


@pytest.mark.parametrize(("percent", "expected"), [(0, 0), (100, 4000)])
def test_sampling_none_and_all(home: LocalHome, tmp_path: Path, percent: int, expected: int) -> None:
    capture = writer(home, tmp_path, percent)
    assert sum(capture.sampled() for _ in range(4000)) == expected
    capture.stop()


def test_sampling_a_share_is_binomial(home: LocalHome, tmp_path: Path) -> None:
    capture = writer(home, tmp_path, 30, rng=random.Random(7))
    n = 20_000
    sampled = sum(capture.sampled() for _ in range(n))
    capture.stop()
    # 30% of 20 000: mean 6000, standard deviation about 65; 5 deviations either side.
    assert abs(sampled - 0.3 * n) < 5 * (n * 0.3 * 0.7) ** 0.5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(destination_uri=DESTINATION, sampling_percent=101), "not within 0-100"),
        (dict(destination_uri="file:///tmp/capture", sampling_percent=10), "not an s3:// URI"),
    ],
)
def test_bad_capture_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        CaptureSettings(**settings)
