"""The Firehose emulator's state and its operation: the stage's delivery stream, the records producers
put, and their delivery through the real transform Lambda into the local raw bucket.

What the deployed stream (``infra.constructs.ingestion.IngestionStream``) does, on one machine, with
the buffer, retries and compression of ``rookery_contracts.ingest``: records are batched (at most
the transform's buffer per invocation) into Firehose transformation events
(``firehose_transform.events.build_firehose_event``) and handed to the real
handler, ``firehose_transform.handler.lambda_handler``, in a separate process that has exactly the
function's environment (a cold start, as in Lambda; its log is the function's CloudWatch log).
``Ok`` records are written newline-delimited under the stream's prefix, evaluated from the same
template the construct deploys (``<dataset>/ingest_date=YYYY-MM-DD/``), in objects named as Firehose
names them (``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``, ``.gz`` when GZIP). ``ProcessingFailed``
records go under the error prefix (``errors/processing-failed/ingest_date=.../``) in Firehose's
error-record JSON format. Every record in is accounted for: ok + failed (+ dropped) = in.
"""

from __future__ import annotations

import base64
import gzip
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from emulators.core.home import LocalHome
from emulators.firehose.responses import (
    FUNCTION_ERROR_CODE,
    PROCESSING_FAILED_CODE,
    PROCESSING_FAILED_MESSAGE,
    PROCESSING_FAILED_OUTPUT,
    Compression,
    answered,
    error_record,
    evaluate_prefix,
    object_name,
)
from emulators.firehose.transform import TRANSFORM_PACKAGE, invoke_transform, logged_reasons
from emulators.s3 import LocalS3
from pipelines.settings import PLACEHOLDER_ACCOUNT, PipelineResources
from rookery_contracts.env import (
    DATASET_SCHEMA_ENV,
    POWERTOOLS_LOG_LEVEL_ENV,
    POWERTOOLS_NAMESPACE_ENV,
    POWERTOOLS_SERVICE_ENV,
    POWERTOOLS_TRACE_DISABLED_ENV,
)
from rookery_contracts.ingest import DELIVERY_COMPRESSION, TRANSFORM_BUFFER_MIB, TRANSFORM_RETRIES
from stage import Stage
from stage.names import delivery_stream_name

MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class ProducerRecord:
    """One record exactly as a producer PUTs it to the stream (``PutRecord``'s ``Data``)."""

    payload: bytes


# --- The stream --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryStream:
    """The stage's stream as the construct deploys it, with local stand-ins for the ARNs."""

    name: str
    region: str
    account: str
    bucket: str
    prefix_template: str
    error_prefix_template: str
    schema_json: str
    metrics_namespace: str
    compression: Compression = DELIVERY_COMPRESSION
    transform_batch_bytes: int = TRANSFORM_BUFFER_MIB * MIB
    object_bytes: int = 64 * MIB

    @classmethod
    def for_stage(cls, stage: Stage, *, compression: Compression = DELIVERY_COMPRESSION) -> DeliveryStream:
        layout = stage.data.layout
        return cls(
            name=delivery_stream_name(stage),
            region=stage.region,
            account=stage.account or PLACEHOLDER_ACCOUNT,
            # One place for the raw bucket's name: the pipeline reads its default input from the same one.
            bucket=PipelineResources.placeholders(stage).raw_bucket,
            prefix_template=layout.firehose_prefix(stage.dataset),
            error_prefix_template=layout.firehose_error_prefix(),
            schema_json=stage.dataset.to_json(),
            metrics_namespace=stage.qualifier,
            compression=compression,
            object_bytes=stage.data.firehose_buffer_mib * MIB,
        )

    @property
    def arn(self) -> str:
        return f"arn:aws:firehose:{self.region}:{self.account}:deliverystream/{self.name}"

    @property
    def function_name(self) -> str:
        return f"{self.name}-transform"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    def function_environment(self) -> dict[str, str]:
        """The transform's environment as the construct sets it (tracing off: no X-Ray daemon here)."""
        return {
            DATASET_SCHEMA_ENV: self.schema_json,
            POWERTOOLS_SERVICE_ENV: TRANSFORM_PACKAGE,
            POWERTOOLS_NAMESPACE_ENV: self.metrics_namespace,
            POWERTOOLS_LOG_LEVEL_ENV: "INFO",
            POWERTOOLS_TRACE_DISABLED_ENV: "true",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


# --- Results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedRecord:
    """A record the function rejected, with the reason it logged and where Firehose put it."""

    position: int  # index of the record among those delivered
    invocation: int
    record_id: str
    reason: str
    preview: str
    error_object: str


@dataclass(frozen=True)
class Delivery:
    """What one local delivery did; ``records_in == ok + failed + dropped`` always holds."""

    stream: str
    bucket: str
    compression: Compression
    arrival: str
    records_in: int
    ok: int
    failed: int
    dropped: int
    invocations: int
    data_objects: tuple[str, ...]
    error_objects: tuple[str, ...]
    failures: tuple[FailedRecord, ...]
    log_path: str
    data_prefix: str
    error_prefix: str
    # Keys written, so a later demo run can replace exactly its own earlier delivery.
    written: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Delivery:
        values = dict(raw)
        values["failures"] = tuple(FailedRecord(**f) for f in values["failures"])
        for key in ("data_objects", "error_objects", "written"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)


# --- Delivery ----------------------------------------------------------------------------------


def batches(records: Sequence[ProducerRecord], max_bytes: int) -> Iterator[list[ProducerRecord]]:
    """Consecutive batches of at most ``max_bytes`` of payload (a larger record travels alone)."""
    batch: list[ProducerRecord] = []
    size = 0
    for record in records:
        if batch and size + len(record.payload) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record.payload)
    if batch:
        yield batch


def _chunks(lines: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    """S3 objects of at most ``max_bytes`` (Firehose's size buffer), cut at record boundaries."""
    current = bytearray()
    for line in lines:
        if current and len(current) + len(line) > max_bytes:
            yield bytes(current)
            current = bytearray()
        current += line
    if current:
        yield bytes(current)


def _preview(data_b64: str, limit: int = 90) -> str:
    text = base64.b64decode(data_b64).decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def deliver(
    records: Sequence[ProducerRecord],
    stream: DeliveryStream,
    home: LocalHome,
    *,
    log_path: Path,
    arrival: datetime | None = None,
    retries: int = TRANSFORM_RETRIES,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Delivery:
    """Deliver ``records`` as Firehose would, writing into ``home``'s local S3; see the module docstring."""
    moment = (arrival or datetime.now(UTC)).astimezone(UTC)
    groups = list(batches(records, stream.transform_batch_bytes))
    request_ids = [new_id() for _ in groups]
    answers = invoke_transform(
        stream,
        [
            {
                "payloads": [base64.b64encode(r.payload).decode("ascii") for r in group],
                "arrival_ms": int(moment.timestamp() * 1000),
                "invocation_id": new_id(),
                "request_id": request_id,
            }
            for group, request_id in zip(groups, request_ids, strict=True)
        ],
        log_path=log_path,
    )
    reasons = logged_reasons(log_path)
    delivered_at = datetime.now(UTC)
    ended_ms = int(delivered_at.timestamp() * 1000)

    ok_lines: list[bytes] = []
    error_lines: list[bytes] = []
    failed: list[tuple[int, int, str, str, str]] = []  # position, invocation, record id, reason, preview
    dropped = 0
    offset = 0  # position of the batch's first record among all records delivered
    for number, answer in enumerate(answers, start=1):
        sent = answer["event"]["records"]
        first, offset = offset, offset + len(sent)
        if "error" in answer:
            # Firehose retries a failing invocation, then writes the whole batch to the error prefix.
            for index, raw in enumerate(sent):
                error_lines.append(
                    error_record(
                        raw,
                        code=FUNCTION_ERROR_CODE,
                        message=str(answer["error"]),
                        attempts=retries + 1,
                        ended_ms=ended_ms,
                        lambda_arn=stream.function_arn,
                    )
                )
                failed.append(
                    (first + index, number, raw["recordId"], str(answer["error"]), _preview(raw["data"]))
                )
            continue
        for index, (raw, out) in enumerate(
            zip(sent, answered(number, sent, answer["response"]), strict=True)
        ):
            result = out["result"]
            if result == "Ok":
                ok_lines.append(base64.b64decode(out.get("data") or ""))
            elif result == "Dropped":
                dropped += 1
            else:
                error_lines.append(
                    error_record(
                        raw,
                        code=PROCESSING_FAILED_CODE,
                        message=PROCESSING_FAILED_MESSAGE,
                        attempts=1,
                        ended_ms=ended_ms,
                        lambda_arn=stream.function_arn,
                    )
                )
                reason = reasons.get(
                    (request_ids[number - 1], raw["recordId"]), "(the function logged no reason)"
                )
                failed.append((first + index, number, raw["recordId"], reason, _preview(raw["data"])))

    data_prefix = evaluate_prefix(stream.prefix_template, timestamp=moment)
    error_prefix = evaluate_prefix(
        stream.error_prefix_template, timestamp=moment, error_output_type=PROCESSING_FAILED_OUTPUT
    )
    data_objects = _write_objects(
        home, stream=stream, prefix=data_prefix, lines=ok_lines, moment=delivered_at, new_id=new_id
    )
    error_objects = _write_objects(
        home, stream=stream, prefix=error_prefix, lines=error_lines, moment=delivered_at, new_id=new_id
    )
    # Each failed record sits in the error object holding its line (one object unless > buffer size).
    owners = _line_owners(error_lines, stream.object_bytes, error_objects)
    failures = tuple(
        FailedRecord(
            position=at, invocation=n, record_id=rid, reason=why, preview=text, error_object=owners[i]
        )
        for i, (at, n, rid, why, text) in enumerate(failed)
    )
    return Delivery(
        stream=stream.name,
        bucket=stream.bucket,
        compression=stream.compression,
        arrival=moment.isoformat(timespec="milliseconds"),
        records_in=len(records),
        ok=len(ok_lines),
        failed=len(failed),
        dropped=dropped,
        invocations=len(answers),
        data_objects=tuple(data_objects),
        error_objects=tuple(error_objects),
        failures=failures,
        log_path=str(log_path),
        data_prefix=f"s3://{stream.bucket}/{data_prefix}",
        error_prefix=f"s3://{stream.bucket}/{error_prefix}",
        written=tuple((*data_objects, *error_objects)),
    )


def _write_objects(
    home: LocalHome,
    *,
    stream: DeliveryStream,
    prefix: str,
    lines: Sequence[bytes],
    moment: datetime,
    new_id: Callable[[], str],
) -> list[str]:
    uris = []
    for body in _chunks(lines, stream.object_bytes):
        uri = f"s3://{stream.bucket}/{prefix}{object_name(stream.name, moment, new_id(), stream.compression)}"
        LocalS3(home).put_bytes(gzip.compress(body, mtime=0) if stream.compression == "GZIP" else body, uri)
        uris.append(uri)
    return uris


def _line_owners(lines: Sequence[bytes], max_bytes: int, objects: Sequence[str]) -> list[str]:
    owners: list[str] = []
    index = size = 0
    for line in lines:
        if size and size + len(line) > max_bytes:
            index, size = index + 1, 0
        owners.append(objects[index])
        size += len(line)
    return owners
