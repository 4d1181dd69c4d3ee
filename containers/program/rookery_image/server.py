"""The endpoint: a raw ASGI app on uvicorn (uvloop + httptools), one process per worker.

``GET /ping`` answers 200 once this worker has loaded the model (503 before); ``POST /invocations``
runs :class:`rookery_image.codec.Predictor`; ``GET /execution-parameters`` tells batch transform how
to batch. No web framework sits in between: routing is three paths, and every microsecond of
per-request overhead shows at one record per request.

The event loop only moves bytes: decoding and prediction run on one thread per worker, so ``/ping``
answers while the largest request is being predicted. ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` bounds
how long a request's headers (:class:`GuardedHttpProtocol`) and its body may take to arrive (408),
and a graceful shutdown answers a request whose body is still arriving at once instead of waiting.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from rookery_contracts.env import DECISION_THRESHOLD_ENV
from rookery_contracts.model_layout import METADATA_FILE
from rookery_image import contract
from rookery_image.codec import PayloadError, Predictor
from rookery_image.model import ModelBundle, ModelLoadError, check_folder

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("uvicorn.error")
JSON = b"application/json"


def load_predictor(settings: contract.ServingSettings) -> Predictor:
    # One OpenMP thread per worker: several threads per worker on a busy box ran up to 18x slower.
    bundle = ModelBundle.load(settings.model_dir, threshold=settings.decision_threshold, nthread=1)
    source = DECISION_THRESHOLD_ENV if settings.decision_threshold is not None else METADATA_FILE
    log.info(
        "model loaded: %s rounds, %s features, decision threshold %s (from %s), unknown categories: %s",
        bundle.metadata.get("rounds"),
        len(bundle.preprocessor.feature_names),
        bundle.threshold,
        source,
        settings.unknown_category,
    )
    return Predictor(bundle, unknown_category=settings.unknown_category)


class InferenceApp:
    def __init__(self, loader: Callable[[], Predictor] | None = None) -> None:
        self._loader = loader
        self.predictor: Predictor | None = None
        self.settings: contract.ServingSettings | None = None
        # One prediction at a time per worker (the model runs one OpenMP thread); requests beyond it
        # wait with their body read, and the event loop stays free for /ping.
        self._predicting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    def load(self) -> None:
        self.settings = contract.ServingSettings.from_env()
        settings = self.settings
        self.predictor = self._loader() if self._loader else load_predictor(settings)
        # Everything loaded so far lives as long as the worker: keep it out of every later garbage
        # collection, so a full collection does not pause a request while it walks numpy and xgboost.
        gc.collect()
        gc.freeze()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.load()
                except Exception as exc:
                    log.error("cannot load the model: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _respond(send, 405, JSON, b'{"error": "use POST for /invocations"}')
                return
            await self._invocations(scope, receive, send)
        elif path == "/ping":
            if self.predictor is None:
                await _respond(send, 503, JSON, b'{"status": "loading"}')
            else:
                await _respond(send, 200, JSON, b'{"status": "healthy"}')
        elif path == "/execution-parameters":
            settings = self.settings
            workers = settings.workers if settings else 1
            params = {
                "MaxConcurrentTransforms": workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": 6,
            }
            await _respond(send, 200, JSON, orjson.dumps(params))
        else:
            await _respond(send, 404, JSON, b'{"error": "not found; use GET /ping or POST /invocations"}')

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        predictor = self.predictor
        if predictor is None:
            await _respond(
                send, 503, JSON, b'{"error": "the model is still loading; retry after /ping is 200"}'
            )
            return
        content_type = accept = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        if length is not None and length.isdigit() and int(length) > contract.MAX_PAYLOAD_BYTES:
            await _error(send, PayloadError(413, _too_large(int(length))))
            return
        body = await self._body(receive, send)
        if body is None:
            return
        loop = asyncio.get_running_loop()
        try:
            status, media, answer = await loop.run_in_executor(
                self._predicting, predictor.invoke, body, content_type, accept
            )
        except Exception:  # a bug must cost one request, never the worker
            log.exception("invocation failed")
            status, media, answer = (
                500,
                JSON,
                b'{"error": "internal error while predicting; see the endpoint log"}',
            )
        await _respond(send, status, media, answer)

    async def _body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering 408/413 (or when the client went away)."""
        chunks: list[bytes] = []
        size, more = 0, True
        timeout = self.settings.timeout_seconds if self.settings else 60
        try:
            async with asyncio.timeout(timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > contract.MAX_PAYLOAD_BYTES:
                        await _error(send, PayloadError(413, _too_large(size, at_least=True)))
                        return None
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _error(send, PayloadError(408, f"the request body did not arrive within {timeout} s"))
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"the body is {more}{size} bytes; the limit is {contract.MAX_PAYLOAD_BYTES} bytes (6 MB): "
        "send fewer records per request"
    )


async def _error(send: Send, exc: PayloadError) -> None:
    # A body that did not arrive leaves the connection mid-request: close it. (A body over the limit
    # is still read, and dropped, by uvicorn, so that the client sees the 413 before it stops sending.)
    await _respond(send, exc.status, JSON, exc.body(), close=exc.status == 408)


async def _respond(send: Send, status: int, media: bytes, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = InferenceApp()


@functools.cache
def _timeout_seconds() -> int:
    return contract.ServingSettings.from_env().timeout_seconds


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with two guards it lacks.

    A request's headers must be complete within ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` of the connection
    opening or of the request's first byte: a client that trickles them gets a 408 and the
    connection is closed. On a graceful shutdown, a request whose body is still arriving is answered
    503 and closed at once (uvicorn would wait for it, then cancel it with a 500).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_started:
            self._close_with(503, b'{"error": "the server is shutting down; retry the request"}')
            cycle.disconnected = True  # the app's receive() now says http.disconnect: no 500
            cycle.message_event.set()
            return
        super().shutdown()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(_timeout_seconds(), self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; a pipelined one waits its turn
        message = f"the request headers did not arrive within {_timeout_seconds()} s"
        self._close_with(408, orjson.dumps({"error": message}))

    def _close_with(self, status: int, body: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, HTTPStatus(status).phrase.encode(), len(body), body)
        )
        self.transport.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """The shared listening socket, with TCP_NODELAY so accepted connections inherit it.

    Without TCP_NODELAY a Python server's small writes meet Nagle's algorithm and delayed ACKs:
    about 40 ms per POST. (uvloop also sets it per connection; this makes it hold for any loop.)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main() -> int:
    # Before anything loads OpenMP (xgboost is imported by the workers); inherited by every worker.
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        settings = contract.ServingSettings.from_env()
        check_folder(settings.model_dir)  # fail fast and clearly, before any worker starts
    except (contract.UserError, ModelLoadError) as exc:
        reason = f"UserError: {exc}"
        contract.write_failure(reason)
        print(reason, file=sys.stderr, flush=True)
        return contract.EXIT_USER_ERROR
    config = uvicorn.Config(
        "rookery_image.server:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=GuardedHttpProtocol,
        lifespan="on",
        access_log=False,
        server_header=False,
        timeout_keep_alive=max(5, settings.timeout_seconds),
        timeout_graceful_shutdown=settings.timeout_seconds,
        log_level="info",
    )
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        print(f"serve: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr, flush=True)
        return contract.EXIT_USER_ERROR
    print(f"serve: {settings.workers} worker(s) on {settings.host}:{settings.port}", flush=True)
    if settings.workers == 1:
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return STARTUP_FAILURE if failed else 0
