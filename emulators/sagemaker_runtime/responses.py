"""InvokeEndpoint's wire format (rest-json), as botocore's ``sagemaker-runtime`` client sends and parses it.

``POST /endpoints/<name>/invocations``: the body goes to the fleet the endpoint routes it to, with
``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes`` passed through; the answer
comes back with ``x-Amzn-Invoked-Production-Variant``. A model's non-2xx answer becomes SageMaker's
``ModelError`` (HTTP 424 with ``OriginalStatusCode``, ``OriginalMessage`` and the log stream), so an
unmodified boto3 client raises ``ModelError`` exactly as against AWS. ``InferenceId`` arrives as
``X-Amzn-SageMaker-Inference-Id`` and is kept in the capture record; ``TargetVariant`` must name
the endpoint's variant.

Connections are HTTP/1.1 keep-alive: a client's connection is served by one thread for as long as
the client keeps it, whichever fleets its requests go to. The front end guards itself as the model
server does: a listen backlog for bursts of clients, the same payload limit (413), a request's
headers and body must arrive within :data:`READ_TIMEOUT_SECONDS` (408), and a request it cannot
frame (a malformed ``Content-Length``, a chunked body) gets a 400 and the connection is closed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

from emulators.sagemaker_runtime.exceptions import ServiceError, validation_error
from emulators.sagemaker_runtime.models import Handled, LocalEndpoint
from rookery_contracts.invocations import MAX_PAYLOAD_BYTES
from stage.names import VARIANT_NAME

PASS_HEADERS: Final = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")
INFERENCE_ID_HEADER: Final = "X-Amzn-SageMaker-Inference-Id"
TARGET_VARIANT_HEADER: Final = "X-Amzn-SageMaker-Target-Variant"
# SageMaker names the model's container "primary" in ModelError messages.
CONTAINER: Final = "primary"
# A request's headers and body must arrive within this long (the model server's default
# SAGEMAKER_MODEL_SERVER_TIMEOUT); an idle keep-alive connection is closed after it too.
READ_TIMEOUT_SECONDS: Final = 60.0


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 dropped connections when many clients connect at once.
    request_queue_size = socket.SOMAXCONN
    daemon_threads = True


class FrontEnd:
    """The HTTP server in front of the fleets, on 127.0.0.1."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    @classmethod
    def listen(cls, endpoint: LocalEndpoint, port: int) -> Self:
        handler = type("Handler", (InvokeEndpointHandler,), {"endpoint": endpoint})
        server = _Server(("127.0.0.1", port), handler)
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
    read_timeout: float = READ_TIMEOUT_SECONDS
    # Per request: whether it has been answered (by the handler or by the watchdog), under _lock.
    _lock: threading.Lock
    _answered: bool
    _request_line_read: bool
    _watchdog: threading.Timer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # each fleet's model log is the log; the front end stays quiet

    def handle_one_request(self) -> None:
        # A watchdog bounds the whole read of a request, which a socket timeout cannot: a client
        # that trickles one byte at a time would reset it forever.
        self._request_line_read = False
        self._answered = False
        self._watchdog = threading.Timer(self.read_timeout, self._read_timed_out)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True  # the watchdog or the client closed the connection
        finally:
            self._watchdog.cancel()

    def parse_request(self) -> bool:
        self._request_line_read = True
        return super().parse_request()

    def _read_timed_out(self) -> None:
        with self._lock:
            if self._answered:
                return  # the handler has the whole request and answers it
            self._answered = True
            if self._request_line_read:
                with contextlib.suppress(OSError):  # the client may be gone already
                    self._error(
                        ServiceError(
                            408,
                            "RequestTimeout",
                            f"the request did not arrive within {self.read_timeout:g} s; send it whole",
                        ),
                        close=True,
                    )
        # Wakes the handler's blocked read; it then ends the connection quietly.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def setup(self) -> None:
        super().setup()
        self._lock = threading.Lock()

    def _send(self, status: int, body: bytes, headers: dict[str, str], *, close: bool = False) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", os.urandom(16).hex())
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: ServiceError, *, close: bool = False) -> None:
        body = json.dumps(
            {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
        ).encode()
        self._send(
            error.status,
            body,
            {"Content-Type": "application/json", "x-amzn-ErrorType": error.code},
            close=close,
        )

    def _refuse(self, error: ServiceError) -> None:
        """Answer a request whose body is not read: the connection cannot carry another request."""
        with self._lock:
            if not self._answered:
                self._answered = True
                self._error(error, close=True)

    def _read_body(self) -> bytes | None:
        """The body, or None after answering (or when the client or the watchdog closed the connection)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(
                validation_error(
                    f"Transfer-Encoding {self.headers['Transfer-Encoding']!r} is not supported; "
                    "send the body with a Content-Length"
                )
            )
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if len({value.strip() for value in lengths}) > 1 or not all(v.strip().isdigit() for v in lengths):
            self._refuse(
                validation_error(
                    f"Content-Length {', '.join(lengths)!r} is not one byte count; send the body's size "
                    "in bytes"
                )
            )
            return None
        length = int(lengths[0]) if lengths else 0
        if length > MAX_PAYLOAD_BYTES:
            self._refuse(
                ServiceError(
                    413,
                    "ValidationError",
                    f"the request body is {length} bytes; InvokeEndpoint accepts at most {MAX_PAYLOAD_BYTES}",
                )
            )
            return None
        body = self.rfile.read(length) if length else b""
        with self._lock:
            if self._answered or len(body) < length:
                self.close_connection = True
                return None
            self._watchdog.cancel()
            self._answered = True  # from here on the handler answers, not the watchdog
        return body

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
        endpoint.capture_answer(
            handled,
            request=body,
            request_type=self.headers.get("Content-Type"),
            inference_id=self.headers.get(INFERENCE_ID_HEADER),
        )
        self._answer(handled)
        endpoint.completed(handled, seconds=time.perf_counter() - started)

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
