"""Data capture as SageMaker writes it, into the local raw bucket, without slowing requests down.

A request thread only decides whether the invocation is sampled and hands the payloads to a
bounded queue (when the queue is full the invocation is not captured and counted as dropped, as
SageMaker stops capturing rather than delay inference). One writer thread turns them into capture
records (``stage.capture``'s format) and appends them to the open file of the hour. A file is
written under a staging name and moved to its key in the local bucket when it is rolled (after
``roll_seconds``, at the hour's end, on :meth:`CaptureWriter.roll` and on stop), so a reader never
sees half a file, as with an S3 object.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from emulators.core.errors import EndpointError, LocalEngineError
from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from emulators.s3.responses import split_s3_uri
from stage.capture import EVENT_VERSION, capture_key, text_encoding

QUEUE_SIZE: Final = 10_000
ROLL_SECONDS: Final = 10.0


@dataclass(frozen=True)
class CaptureSettings:
    """Where and how much to capture: ``DataCaptureConfig`` of the endpoint config."""

    destination_uri: str  # s3://<raw bucket>/capture
    sampling_percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percent <= 100:
            raise EndpointError(
                f"capture sampling percentage {self.sampling_percent} is not within 0-100; "
                "set serving.capture_sampling_percent in the stage"
            )
        try:
            split_s3_uri(self.destination_uri)
        except LocalEngineError as exc:
            raise EndpointError(f"capture destination: {exc}") from None


@dataclass(frozen=True)
class Captured:
    """One sampled invocation, as the request thread hands it over."""

    request_type: str | None
    request: bytes
    response_type: str | None
    response: bytes
    inference_time: dt.datetime
    inference_id: str | None


def _payload(mode: str, content_type: str | None, data: bytes) -> dict[str, str]:
    encoding = text_encoding(content_type)
    text: str | None = None
    if encoding != "BASE64":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"
    if text is None:
        text = base64.b64encode(data).decode("ascii")
    return {"observedContentType": content_type or "", "mode": mode, "data": text, "encoding": encoding}


def capture_record(item: Captured, event_id: str) -> dict[str, Any]:
    """One line of a capture file."""
    metadata: dict[str, str] = {"eventId": event_id}
    if item.inference_id:
        metadata["inferenceId"] = item.inference_id
    metadata["inferenceTime"] = item.inference_time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "captureData": {
            "endpointInput": _payload("INPUT", item.request_type, item.request),
            "endpointOutput": _payload("OUTPUT", item.response_type, item.response),
        },
        "eventMetadata": metadata,
        "eventVersion": EVENT_VERSION,
    }


def decode_data(payload: Mapping[str, Any]) -> bytes:
    """The bytes a capture payload holds (its ``data`` read by its ``encoding``)."""
    data = str(payload["data"])
    if payload["encoding"] == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"capture data is not base64: {exc}") from None
    return data.encode("utf-8")


@dataclass(frozen=True)
class _Roll:
    """A request, queued behind the invocations before it, to publish the open file."""

    done: threading.Event


@dataclass
class _OpenFile:
    handle: IO[str]
    staging: Path
    key: str
    hour: str
    opened_at: float
    records: int = 0


class CaptureWriter:
    """Samples invocations and writes them as capture files under ``destination_uri``."""

    def __init__(
        self,
        home: LocalHome,
        settings: CaptureSettings,
        *,
        endpoint: str,
        variant: str,
        staging: Path,
        roll_seconds: float = ROLL_SECONDS,
        queue_size: int = QUEUE_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.home = home
        self.endpoint = endpoint
        self.variant = variant
        self.staging = staging
        self.roll_seconds = roll_seconds
        bucket, key = split_s3_uri(settings.destination_uri)
        self._bucket = bucket
        self._prefix = f"{key.rstrip('/')}/" if key.strip("/") else ""
        self._queue: queue.Queue[Captured | _Roll | None] = queue.Queue(maxsize=queue_size)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: _OpenFile | None = None
        self.captured = 0
        self.dropped = 0
        self.files: list[str] = []  # s3:// URIs of the files written so far

    @property
    def destination(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}{self.endpoint}/{self.variant}/"

    def start(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.endpoint}", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether the next invocation is captured (``InitialSamplingPercentage`` of them, at random)."""
        percent = self.settings.sampling_percent
        if percent <= 0:
            return False
        if percent >= 100:
            return True
        with self._lock:
            return self._rng.random() * 100 < percent

    def offer(self, item: Captured) -> bool:
        """Queue one sampled invocation; False (and counted as dropped) when the writer is behind."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        return True

    def roll(self, timeout: float = 30.0) -> None:
        """Write everything queued so far and publish the open file: the invocations offered from now
        on go to files started after this returns (a monitoring window ends here)."""
        if self._thread is None:
            raise EndpointError("the capture writer is not running; start the endpoint first")
        request = _Roll(threading.Event())
        self._queue.put(request, timeout=timeout)
        if not request.done.wait(timeout):
            raise EndpointError(f"the capture writer did not publish its open file within {timeout:g} s")

    def stop(self) -> None:
        """Write everything queued, publish the open file, end the writer thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=min(1.0, self.roll_seconds))
            except queue.Empty:
                self._roll_if_due(None)
                continue
            if item is None:
                self._publish()
                return
            if isinstance(item, _Roll):
                self._publish()
                item.done.set()
                continue
            self._write(item)
            if self._queue.empty() and self._current is not None:
                self._current.handle.flush()

    def _roll_if_due(self, hour: str | None) -> None:
        current = self._current
        if current is None:
            return
        aged = time.monotonic() - current.opened_at >= self.roll_seconds
        if aged or (hour is not None and hour != current.hour):
            self._publish()

    def _write(self, item: Captured) -> None:
        hour = item.inference_time.astimezone(dt.UTC).strftime("%Y%m%d%H")
        self._roll_if_due(hour)
        if self._current is None:
            self._current = self._open(item.inference_time, hour)
        line = json.dumps(capture_record(item, str(uuid.uuid4())), separators=(",", ":"))
        self._current.handle.write(line + "\n")
        self._current.records += 1
        self.captured += 1

    def _open(self, at: dt.datetime, hour: str) -> _OpenFile:
        file_id = str(uuid.uuid4())
        key = capture_key(self._prefix, self.endpoint, self.variant, at, file_id)
        staging = self.staging / f"{file_id}.jsonl.part"
        return _OpenFile(staging.open("w", encoding="utf-8"), staging, key, hour, time.monotonic())

    def _publish(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        current.handle.flush()
        os.fsync(current.handle.fileno())
        current.handle.close()
        uri = f"s3://{self._bucket}/{current.key}"
        target = LocalS3(self.home).path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(current.staging, target)
        self.files.append(uri)
