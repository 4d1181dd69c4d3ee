"""Local Firehose delivery: producer records through the real transform Lambda into the local raw bucket.

What the deployed stream (``infra.constructs.ingestion.IngestionStream``) does, on one machine:
records are batched (at most the transform's 1 MiB buffer per invocation) into Firehose
transformation events (``firehose_transform.events.build_firehose_event``) and handed to the real
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
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from emulators.core.home import LocalHome
from emulators.s3 import LocalS3
from pipelines.settings import PLACEHOLDER_ACCOUNT, PipelineResources
from rookery.demo.dataset import ProducerRecord
from stage import Stage
from stage.names import delivery_stream_name
from stage.paths import LAMBDAS_DIR

Compression = Literal["UNCOMPRESSED", "GZIP"]

TRANSFORM_PACKAGE: Final = "firehose_transform"
WORKER: Final = Path(__file__).with_name("worker.py")
MIB: Final = 1024 * 1024
# The construct's processor buffer (IngestionStream TRANSFORM_BUFFER_MIB) and S3 compression
# (CompressionFormat); tests/demo keeps these equal to the construct's values.
TRANSFORM_BUFFER_MIB: Final = 1
STREAM_COMPRESSION: Final[Compression] = "UNCOMPRESSED"
# A stream's version starts at 1 and grows with each configuration change; a local stream has one.
STREAM_VERSION: Final = 1
# What Firehose writes for a record the function answered with ProcessingFailed.
PROCESSING_FAILED_OUTPUT: Final = "processing-failed"
PROCESSING_FAILED_CODE: Final = "Lambda.ProcessingFailedStatus"
PROCESSING_FAILED_MESSAGE: Final = "ProcessingFailed status set for record"
# What Firehose writes for every record of a batch whose invocation kept failing.
FUNCTION_ERROR_CODE: Final = "Lambda.FunctionError"
RESULTS: Final = ("Ok", "ProcessingFailed", "Dropped")


class IngestionError(RuntimeError):
    """Local delivery could not run (the function failed to start, answered out of contract, ...)."""


# --- Firehose's prefix expressions -------------------------------------------------------------

_EXPRESSION = re.compile(r"!\{([a-zA-Z]+):([^}]*)\}")
_DATE_PARTS: Final = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def _java_date(pattern: str, moment: datetime) -> str:
    """A DateTimeFormatter pattern limited to the fields S3 prefixes use (yyyy MM dd HH mm ss)."""
    out = []
    for token in re.findall(r"[A-Za-z]+|[^A-Za-z]+", pattern):
        if token[0].isalpha():
            if token not in _DATE_PARTS:
                raise IngestionError(
                    f"timestamp pattern {pattern!r}: {token!r} is not supported locally; "
                    "use yyyy, MM, dd, HH, mm, ss"
                )
            out.append(moment.strftime(_DATE_PARTS[token]))
        else:
            out.append(token)
    return "".join(out)


def evaluate_prefix(template: str, *, timestamp: datetime, error_output_type: str | None = None) -> str:
    """Evaluate Firehose's ``!{timestamp:...}`` and ``!{firehose:...}`` expressions (UTC) as Firehose does."""

    def replace(match: re.Match[str]) -> str:
        namespace, name = match.group(1), match.group(2)
        if namespace == "timestamp":
            return _java_date(name, timestamp.astimezone(UTC))
        if namespace == "firehose" and name == "error-output-type":
            if error_output_type is None:
                raise IngestionError(
                    f"{template!r} uses !{{firehose:error-output-type}} outside an error prefix"
                )
            return error_output_type
        if namespace == "firehose" and name == "random-string":
            return uuid.uuid4().hex[:11]
        raise IngestionError(f"prefix expression {match.group(0)!r} in {template!r} is not supported locally")

    return _EXPRESSION.sub(replace, template)


def object_name(stream: str, moment: datetime, object_id: str, compression: Compression) -> str:
    """``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>`` (+ ``.gz``): the suffix of every Firehose object."""
    suffix = ".gz" if compression == "GZIP" else ""
    return f"{stream}-{STREAM_VERSION}-{moment.astimezone(UTC):%Y-%m-%d-%H-%M-%S}-{object_id}{suffix}"


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
    compression: Compression = STREAM_COMPRESSION
    transform_batch_bytes: int = TRANSFORM_BUFFER_MIB * MIB
    object_bytes: int = 64 * MIB

    @classmethod
    def for_stage(cls, stage: Stage, *, compression: Compression = STREAM_COMPRESSION) -> DeliveryStream:
        layout = stage.data.layout
        return cls(
            name=delivery_stream_name(stage),
            region=stage.region,
            account=stage.account or PLACEHOLDER_ACCOUNT,
            # One place for the raw bucket's name: the pipeline reads its default input from the same one.
            bucket=PipelineResources.placeholders(stage).raw_bucket,
            prefix_template=layout.firehose_prefix(stage.dataset),
            error_prefix_template=layout.firehose_error_prefix(),
            schema_json=stage.dataset.model_dump_json(),
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
            "ROOKERY_DATASET_SCHEMA": self.schema_json,
            "POWERTOOLS_SERVICE_NAME": TRANSFORM_PACKAGE,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "POWERTOOLS_TRACE_DISABLED": "true",
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


def invoke_transform(
    stream: DeliveryStream, invocations: Sequence[Mapping[str, Any]], *, log_path: Path
) -> list[dict[str, Any]]:
    """Run the real handler once per invocation in one fresh process with the function's environment.

    Each invocation is ``{"payloads": [base64, ...], "arrival_ms", "invocation_id", "request_id"}``;
    the worker builds the event with ``firehose_transform.events.build_firehose_event``. Returns one
    ``{"event", "response"}`` (or ``{"event", "error"}`` when the handler raised) per invocation.
    """
    if not (LAMBDAS_DIR / TRANSFORM_PACKAGE).is_dir():
        raise IngestionError(
            f"the transform function's code is not at {LAMBDAS_DIR / TRANSFORM_PACKAGE}; "
            "run the demo from a rookery checkout (the Lambda ships from lambdas/, not inside the wheel)"
        )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROOKERY_", "POWERTOOLS_", "AWS_", "PYTHON", "_X_AMZN", "LAMBDA_"))
    }
    env.update(stream.function_environment())
    env["PYTHONPATH"] = str(LAMBDAS_DIR)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rookery-firehose-") as tmp:
        job = Path(tmp) / "job.json"
        answers = Path(tmp) / "answers.json"
        job.write_text(
            json.dumps(
                {
                    "delivery_stream_arn": stream.arn,
                    "function_name": stream.function_name,
                    "function_arn": stream.function_arn,
                    "invocations": list(invocations),
                }
            ),
            encoding="utf-8",
        )
        with log_path.open("w", encoding="utf-8") as log:
            # -P: the worker's own folder (rookery/demo) must not shadow modules the function imports.
            done = subprocess.run(
                [sys.executable, "-P", str(WORKER), str(job), str(answers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
        if done.returncode != 0 or not answers.is_file():
            tail = "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-15:])
            raise IngestionError(
                f"the {TRANSFORM_PACKAGE} function failed to start or crashed (exit {done.returncode}); "
                f"its log is {log_path}:\n{tail}"
            )
        result: list[dict[str, Any]] = json.loads(answers.read_text(encoding="utf-8"))
    if len(result) != len(invocations):
        raise IngestionError(
            f"the worker answered {len(result)} of {len(invocations)} invocations; see {log_path}"
        )
    return result


def logged_reasons(log_path: Path) -> dict[tuple[str, str], str]:
    """(request id, record id) -> reason, from the handler's structured 'record failed validation' lines."""
    reasons: dict[tuple[str, str], str] = {}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "record_id" in entry and "reason" in entry:
            reasons[(str(entry.get("function_request_id", "")), str(entry["record_id"]))] = str(
                entry["reason"]
            )
    return reasons


def _error_record(
    raw: Mapping[str, Any], *, code: str, message: str, attempts: int, ended_ms: int, lambda_arn: str
) -> bytes:
    """One line of Firehose's processing-failed output."""
    line = {
        "attemptsMade": attempts,
        "arrivalTimestamp": raw["approximateArrivalTimestamp"],
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": ended_ms,
        "rawData": raw["data"],
        "lambdaArn": lambda_arn,
    }
    return (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8")


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
    retries: int = 3,
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
                    _error_record(
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
        returned = {r.get("recordId"): r for r in answer["response"].get("records", [])}
        if set(returned) != {r["recordId"] for r in sent} or len(returned) != len(sent):
            raise IngestionError(
                f"invocation {number}: the answered record ids do not match the {len(sent)} sent; "
                "a transform must answer every record once with its recordId"
            )
        for index, raw in enumerate(sent):
            out = returned[raw["recordId"]]
            result = out.get("result")
            if result not in RESULTS:
                raise IngestionError(
                    f"invocation {number}, record {raw['recordId']}: result {result!r} "
                    f"is not one of {RESULTS}"
                )
            if result == "Ok":
                ok_lines.append(base64.b64decode(out.get("data") or ""))
            elif result == "Dropped":
                dropped += 1
            else:
                error_lines.append(
                    _error_record(
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
