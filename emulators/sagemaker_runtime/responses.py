"""InvokeEndpoint's wire format (rest-json), as botocore's ``sagemaker-runtime`` client sends and parses it.

``POST /endpoints/<name>/invocations``: the body goes to the fleet the endpoint routes it to, with
``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes`` passed through; the answer
comes back with ``x-Amzn-Invoked-Production-Variant``. A model's non-2xx answer becomes SageMaker's
``ModelError`` (HTTP 424 with ``OriginalStatusCode``, ``OriginalMessage`` and the log stream), so an
unmodified boto3 client raises ``ModelError`` exactly as against AWS. ``InferenceId`` arrives as
``X-Amzn-SageMaker-Inference-Id`` and is kept in the capture record; ``TargetVariant`` must name
the endpoint's variant.

Connections are HTTP/1.1 keep-alive: a client's connection is served by one thread for as long as
the client keeps it, whichever fleets its requests go to.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

from emulators.sagemaker_runtime.exceptions import ServiceError, validation_error
from emulators.sagemaker_runtime.models import Handled, LocalEndpoint
from stage.names import VARIANT_NAME

PASS_HEADERS: Final = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")
INFERENCE_ID_HEADER: Final = "X-Amzn-SageMaker-Inference-Id"
TARGET_VARIANT_HEADER: Final = "X-Amzn-SageMaker-Target-Variant"
# SageMaker names the model's container "primary" in ModelError messages.
CONTAINER: Final = "primary"
# A request body larger than InvokeEndpoint's limit (6 MB) is refused before it reaches a model.
MAX_BODY_BYTES: Final = 6 * 1024 * 1024


class FrontEnd:
    """The HTTP server in front of the fleets, on 127.0.0.1."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    @classmethod
    def listen(cls, endpoint: LocalEndpoint, port: int) -> Self:
        handler = type("Handler", (InvokeEndpointHandler,), {"endpoint": endpoint})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=f"endpoint-{endpoint.name}", daemon=True)
        thread.start()
        return cls(server, thread)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class InvokeEndpointHandler(BaseHTTPRequestHandler):
    endpoint: LocalEndpoint
    protocol_version = "HTTP/1.1"
    server_version = "rookery-local-runtime"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each fleet's model log is the log; the front end stays quiet

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", os.urandom(16).hex())
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: ServiceError) -> None:
        body = json.dumps(
            {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
        ).encode()
        self._send(error.status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error.code})

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(
                validation_error(
                    f"the request body is {length} bytes; InvokeEndpoint accepts at most {MAX_BODY_BYTES}"
                )
            )
            return None
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self._read_body() is not None:
            self._error(
                ServiceError(
                    404, "UnknownOperationException", "only POST /endpoints/<name>/invocations is served here"
                )
            )

    def do_POST(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        endpoint = self.endpoint
        refused = self._refusal()
        if refused is not None:
            self._error(refused)
            return
        headers = {key: self.headers[key] for key in PASS_HEADERS if self.headers.get(key)}
        handled = endpoint.invoke(body, headers)
        self._answer(handled)
        endpoint.completed(
            handled,
            seconds=time.perf_counter() - started,
            request=body,
            request_type=self.headers.get("Content-Type"),
            inference_id=self.headers.get(INFERENCE_ID_HEADER),
        )

    def _refusal(self) -> ServiceError | None:
        endpoint = self.endpoint
        path = urlsplit(self.path).path
        prefix, suffix = "/endpoints/", "/invocations"
        if not (path.startswith(prefix) and path.endswith(suffix)) or "/" in path[len(prefix) : -len(suffix)]:
            return ServiceError(404, "UnknownOperationException", f"no operation at {self.path}")
        name = unquote(path[len(prefix) : -len(suffix)])
        if name != endpoint.name:
            return validation_error(f"Endpoint {name} of account {endpoint.account} not found.")
        variant = self.headers.get(TARGET_VARIANT_HEADER)
        if variant and variant != VARIANT_NAME:
            return validation_error(
                f"The variant {variant} of endpoint {name} is not valid; "
                f"the endpoint's variant is {VARIANT_NAME}."
            )
        return None

    def _answer(self, handled: Handled) -> None:
        endpoint = self.endpoint
        if handled.error is not None:
            self._error(handled.error)
            return
        answer = handled.answer
        assert answer is not None and handled.fleet is not None
        if answer.status == 200:
            out = {
                "Content-Type": answer.headers.get("content-type", "application/octet-stream"),
                "x-Amzn-Invoked-Production-Variant": VARIANT_NAME,
            }
            custom = answer.headers.get("x-amzn-sagemaker-custom-attributes")
            if custom:
                out["X-Amzn-SageMaker-Custom-Attributes"] = custom
            self._send(200, answer.body, out)
            return
        original = answer.body.decode("utf-8", errors="replace")
        kind = "client" if answer.status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{endpoint.name}"
        self._error(
            ServiceError(
                424,
                "ModelError",
                f'Received {kind} error ({answer.status}) from {CONTAINER} with message "{original}". '
                f"See the model log {handled.fleet.log_path} for more information.",
                OriginalStatusCode=answer.status,
                OriginalMessage=original,
                LogStreamArn=f"arn:aws:logs:{endpoint.region}:{endpoint.account}:log-group:{log_group}",
                ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
            )
        )
