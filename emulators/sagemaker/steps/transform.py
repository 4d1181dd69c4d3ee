"""A Transform step: batch transform over HTTP against the model's own ``serve`` entrypoint.

Every object under the input S3 location is split into records (``SplitType=Line``), packed into
requests of at most ``MaxPayloadInMB`` (``MultiRecord``; one record each with ``SingleRecord``),
posted with the step's ContentType and Accept (``MaxConcurrentTransforms`` at once, from
``/execution-parameters`` when the step does not say), and the answers are assembled in input order
into ``<S3OutputPath>/<relative input path>.out`` (``AssembleWith=Line``: one line per answer line).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final
from urllib.parse import urlsplit

from emulators.core.files import fresh_dir
from emulators.core.serving import ServeError, ServeProcess
from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.models import load_model, now
from emulators.sagemaker.pipeline.context import StepContext, StepResult, no_objects

MB: Final = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB: Final = 6


def batches(data: bytes, split: str, strategy: str, limit: int) -> Iterator[tuple[int, bytes]]:
    """``(records, body)`` requests for one object; raises ValueError for a record above ``limit``."""
    if split != "Line":
        if len(data) > limit:
            raise ValueError(f"the object is {len(data)} bytes, above MaxPayloadInMB ({limit} bytes)")
        yield 1, data
        return
    lines = [line for line in data.split(b"\n") if line.strip()]
    current: list[bytes] = []
    size = 0
    for index, line in enumerate(lines, start=1):
        if len(line) + 1 > limit:
            raise ValueError(f"record {index} is {len(line)} bytes, above MaxPayloadInMB ({limit} bytes)")
        if current and (strategy == "SingleRecord" or size + len(line) + 1 > limit):
            yield len(current), b"\n".join(current) + b"\n"
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        yield len(current), b"\n".join(current) + b"\n"


class _Client(threading.local):
    connection: http.client.HTTPConnection | None = None


def run_transform(ctx: StepContext) -> StepResult:
    args = ctx.args
    name = ctx.job_name
    model = load_model(ctx.home, str(args["ModelName"]))
    container = model["PrimaryContainer"]
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    content_type = args["TransformInput"].get("ContentType")
    split = args["TransformInput"].get("SplitType") or "None"
    output = args["TransformOutput"]
    accept = output.get("Accept")
    assemble = output.get("AssembleWith") or "None"
    properties: dict[str, Any] = {
        **args,
        "TransformJobName": name,
        "TransformJobArn": ctx.arn("transform-job", name),
        "TransformJobStatus": "InProgress",
        "CreationTime": now().isoformat(),
    }
    if source.get("S3DataType") == "S3Object":
        path = ctx.s3.path(source["S3Uri"])
        files = [(path.name, path)] if path.is_file() else []
    else:
        files = ctx.s3.list_prefix(source["S3Uri"])
    if not files:
        raise no_objects(source["S3Uri"], "TransformInput")
    sandbox = fresh_dir(ctx.job_dir)
    environment = {**(container.get("Environment") or {}), **(args.get("Environment") or {})}
    archive = ctx.s3.path(container["ModelDataUrl"])
    properties["TransformStartTime"] = now().isoformat()
    records = requests = 0
    with ctx.slots:
        try:
            server = ServeProcess.start(
                ctx.images,
                container["Image"],
                archive,
                sandbox=sandbox,
                environment=environment,
                log_path=ctx.log_path,
            )
        except ServeError as exc:
            properties["TransformJobStatus"] = "Failed"
            reason = f"ClientError: the model container did not start: {exc}"
            properties["FailureReason"] = reason
            raise StepFailedError(reason, properties) from None
        with server:
            offered = server.execution_parameters()
            strategy = args.get("BatchStrategy") or _strategy(offered.get("BatchStrategy")) or "MultiRecord"
            limit_mb = args.get("MaxPayloadInMB") or offered.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB
            concurrency = int(
                args.get("MaxConcurrentTransforms") or offered.get("MaxConcurrentTransforms") or 1
            )
            properties.update(
                BatchStrategy=strategy, MaxPayloadInMB=limit_mb, MaxConcurrentTransforms=concurrency
            )
            headers = {"Content-Type": content_type} if content_type else {}
            if accept:
                headers["Accept"] = accept
            target = urlsplit(server.url)
            client = _Client()

            def post(body: bytes) -> bytes:
                if client.connection is None:
                    client.connection = http.client.HTTPConnection(
                        str(target.hostname), target.port, timeout=600
                    )
                client.connection.request("POST", "/invocations", body=body, headers=headers)
                response = client.connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    raise _ModelAnswer(response.status, answer)
                return answer

            for relative, path in files:
                try:
                    parts = list(batches(path.read_bytes(), split, strategy, int(float(limit_mb) * MB)))
                except ValueError as exc:
                    reason = f"ClientError: {relative}: {exc}"
                    properties.update(TransformJobStatus="Failed", FailureReason=reason)
                    raise StepFailedError(reason, properties) from None
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    try:
                        answers = list(pool.map(post, [body for _, body in parts]))
                    except _ModelAnswer as exc:
                        text = exc.body.decode("utf-8", errors="replace")[:1000]
                        reason = (
                            f"ClientError: the model answered {exc.status} for {relative}: {text}; "
                            f"see the log {ctx.log_path}"
                        )
                        properties.update(TransformJobStatus="Failed", FailureReason=reason)
                        raise StepFailedError(reason, properties) from None
                    except OSError as exc:
                        reason = (
                            f"ClientError: the model container stopped answering: {exc}; {server.reason()}"
                        )
                        properties.update(TransformJobStatus="Failed", FailureReason=reason)
                        raise StepFailedError(reason, properties) from None
                records += sum(count for count, _ in parts)
                requests += len(parts)
                out = _assemble(answers, assemble)
                ctx.s3.put_bytes(out, f"{output['S3OutputPath'].rstrip('/')}/{relative}.out")
                ctx.emit(f"{relative}: {sum(c for c, _ in parts)} record(s) in {len(parts)} request(s)")
    ended = now()
    properties.update(TransformJobStatus="Completed", TransformEndTime=ended.isoformat())
    return StepResult(properties, {"records": records, "requests": requests, "files": len(files)})


def _strategy(offered: object) -> str | None:
    return {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}.get(str(offered))


def _assemble(answers: list[bytes], assemble: str) -> bytes:
    if assemble != "Line":
        return b"".join(answers)
    lines = [answer.rstrip(b"\n") for answer in answers if answer.strip()]
    return b"\n".join(lines) + b"\n" if lines else b""


class _ModelAnswer(Exception):  # noqa: N818 - carries a non-200 answer out of the worker threads
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(status)
