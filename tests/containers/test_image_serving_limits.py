"""The endpoint under slow, stalled and heavy clients, over real sockets against the `serve` process.

``SAGEMAKER_MODEL_SERVER_TIMEOUT`` bounds how long headers and a body may take (408); a graceful
shutdown is not held up by stalled clients; ``/ping`` stays fast while the largest requests are
predicted; a request's memory is a small multiple of its body.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from image_helpers import Endpoint, PipelineRun, serving

from rookery_image.codec import Predictor
from rookery_image.contract import MAX_PAYLOAD_BYTES
from rookery_image.model import ModelBundle

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image-penguins")]

TIMEOUT = 2  # SAGEMAKER_MODEL_SERVER_TIMEOUT for the timeout tests
# The smallest valid CSV record, repeated to the payload limit: the most records one request can hold.
TINY_RECORD = b"1,1,1,1,Adelie,Dream\n"
MAX_BODY = TINY_RECORD * (MAX_PAYLOAD_BYTES // len(TINY_RECORD))
TINY_JSON_RECORD = (
    b'{"bill_length_mm":1,"bill_depth_mm":1,"flipper_length_mm":1,"body_mass_g":1,'
    b'"species":"Adelie","island":"Dream"}'
)


@pytest.fixture
def quick_timeout_endpoint(penguins: PipelineRun) -> Iterator[Endpoint]:
    with serving(penguins.model_dir, workers=1, SAGEMAKER_MODEL_SERVER_TIMEOUT=str(TIMEOUT)) as endpoint:
        yield endpoint


def connect(endpoint: Endpoint) -> socket.socket:
    host, port = endpoint.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_headers_that_trickle_in_get_408_after_the_timeout(quick_timeout_endpoint: Endpoint) -> None:
    sock = connect(quick_timeout_endpoint)
    started = time.monotonic()
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: endpoint\r\nContent-Type: text/csv\r\nX-Slow: ")
    answer = b""
    sock.settimeout(0.25)
    while time.monotonic() - started < 4 * TIMEOUT and not answer:
        try:
            sock.sendall(b"a")  # one byte of header every quarter second, never the blank line
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
    elapsed = time.monotonic() - started
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"the request headers did not arrive within 2 s" in answer
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + 2


def test_a_connection_that_sends_nothing_gets_408_after_the_timeout(quick_timeout_endpoint: Endpoint) -> None:
    with connect(quick_timeout_endpoint) as sock:
        started = time.monotonic()
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and TIMEOUT - 0.5 <= time.monotonic() - started < TIMEOUT + 2


@pytest.mark.parametrize("sent", [b"", b"39.1,18.7,"], ids=["no body at all", "part of the body"])
def test_a_body_that_does_not_arrive_gets_408_after_the_timeout(
    quick_timeout_endpoint: Endpoint, sent: bytes
) -> None:
    with connect(quick_timeout_endpoint) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: endpoint\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 1000\r\n\r\n" + sent
        )
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"the request body did not arrive within 2 s" in answer
    assert TIMEOUT - 0.5 <= time.monotonic() - started < TIMEOUT + 2


def test_shutdown_is_not_held_up_by_stalled_clients_and_answers_no_500(penguins: PipelineRun) -> None:
    with serving(penguins.model_dir, workers=1, SAGEMAKER_MODEL_SERVER_TIMEOUT="60") as endpoint:
        trickling = [connect(endpoint) for _ in range(20)]
        for sock in trickling:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: endpoint\r\nX-Slow: a")
        stalled = [connect(endpoint) for _ in range(20)]
        for sock in stalled:
            sock.sendall(
                b"POST /invocations HTTP/1.1\r\nHost: endpoint\r\nContent-Type: text/csv\r\n"
                b"Content-Length: 1000\r\n\r\n39.1,"
            )
        time.sleep(0.5)  # every request has reached the server
        started = time.monotonic()
        os.kill(endpoint.pid, signal.SIGTERM)
        while os.waitpid(endpoint.pid, os.WNOHANG) == (0, 0):
            assert time.monotonic() - started < 10, "serve did not exit within 10 s of SIGTERM"
            time.sleep(0.05)
        answers = [read_answer(sock) for sock in trickling + stalled]
        log = (penguins.model_dir.parent / f"serve-{endpoint.url.rsplit(':', 1)[1]}.log").read_text()
    assert all(a == b"" for a in answers[:20]), "a request whose headers never ended is just closed"
    assert all(a.startswith(b"HTTP/1.1 503 ") and b"shutting down" in a for a in answers[20:]), answers[20:]
    assert "Exception in ASGI application" not in log and " 500 " not in log


def test_ping_answers_within_2_s_while_maximum_size_requests_are_predicted(penguins: PipelineRun) -> None:
    with serving(penguins.model_dir, workers=1) as endpoint:

        def invoke() -> int:
            request = urllib.request.Request(
                f"{endpoint.url}/invocations", data=MAX_BODY, headers={"Content-Type": "text/csv"}
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                response.read()
                return int(response.status)

        with ThreadPoolExecutor(3) as pool:
            invocations = [pool.submit(invoke) for _ in range(3)]
            pings: list[float] = []
            while not all(f.done() for f in invocations):
                started = time.monotonic()
                with urllib.request.urlopen(f"{endpoint.url}/ping", timeout=30) as response:
                    assert response.status == 200
                pings.append(time.monotonic() - started)
                time.sleep(0.1)
            assert [f.result() for f in invocations] == [200, 200, 200]
    assert len(pings) >= 5, "the requests were in flight while /ping was asked"
    assert max(pings) < 2.0, f"slowest /ping {max(pings):.2f} s"


MEMORY_CASES = {
    "one-character lines": (b"1\n" * (MAX_PAYLOAD_BYTES // 2), "text/csv", 400),
    "smallest valid CSV records": (MAX_BODY, "text/csv", 200),
    "empty JSON lines": (b"{}\n" * (MAX_PAYLOAD_BYTES // 3), "application/jsonlines", 400),
    "a JSON list of empty objects": (
        b"[" + b"{}," * (MAX_PAYLOAD_BYTES // 3 - 2) + b"{}]",
        "application/json",
        400,
    ),
    "a JSON list of the smallest valid records": (
        b"[" + b",".join([TINY_JSON_RECORD] * (MAX_PAYLOAD_BYTES // (len(TINY_JSON_RECORD) + 1))) + b"]",
        "application/json",
        200,
    ),
}


@pytest.mark.parametrize(("body", "content_type", "status"), MEMORY_CASES.values(), ids=MEMORY_CASES.keys())
def test_a_request_costs_a_small_multiple_of_its_body_in_memory(
    penguins: PipelineRun, body: bytes, content_type: str, status: int
) -> None:
    predictor = Predictor(ModelBundle.load(penguins.model_dir, nthread=1))
    tracemalloc.start()
    try:
        got, _, _ = predictor.invoke(body, content_type, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == status
    assert peak < 5 * len(body), f"{peak / len(body):.1f} times the body"
