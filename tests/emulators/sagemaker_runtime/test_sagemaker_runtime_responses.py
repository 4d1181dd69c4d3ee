"""The local endpoint's front end as a client meets it over real sockets: bursts, slow and stalled
clients, bodies over the limit and requests it cannot frame. (No model fleet is needed: each of
these is answered by the front end before a request would reach one.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_testing import project_images

from emulators.core.home import LocalHome
from emulators.sagemaker_runtime.models import EndpointSettings, LocalEndpoint
from emulators.sagemaker_runtime.responses import FrontEnd
from rookery_contracts.invocations import MAX_PAYLOAD_BYTES

TIMEOUT = 1.0


@pytest.fixture
def front(home: LocalHome, tmp_path: Path) -> Iterator[FrontEnd]:
    endpoint = LocalEndpoint(home, "front-end", project_images(), EndpointSettings(), tmp_path / "endpoint")
    front = FrontEnd.listen(endpoint, 0)
    front.server.RequestHandlerClass.read_timeout = TIMEOUT  # type: ignore[attr-defined]
    yield front
    front.close()


def connect(front: FrontEnd) -> socket.socket:
    return socket.create_connection(("127.0.0.1", front.server.server_address[1]), timeout=30)


def exchange(front: FrontEnd, request: bytes) -> bytes:
    """Send ``request``; everything the front end answers until it closes the connection."""
    with connect(front) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


INVOKE = b"POST /endpoints/front-end/invocations HTTP/1.1\r\nHost: local\r\nContent-Type: text/csv\r\n"


def test_a_burst_of_200_clients_connecting_at_once_is_served_without_a_dropped_connection(
    front: FrontEnd,
) -> None:
    start = threading.Barrier(200)
    answers: list[bytes | Exception] = []

    def client() -> None:
        start.wait()
        try:
            answers.append(exchange(front, b"GET /ping HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n"))
        except OSError as exc:
            answers.append(exc)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = [a for a in answers if isinstance(a, Exception)]
    assert not refused, f"{len(refused)} of 200 connections failed: {refused[:3]}"
    assert len(answers) == 200 and all(a.startswith(b"HTTP/1.1 404 ") for a in answers)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("framing", "message"),
    [
        (b"Content-Length: ten\r\n", b"Content-Length 'ten' is not one byte count"),
        (b"Content-Length: -5\r\n", b"Content-Length '-5' is not one byte count"),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length '5, 6' is not one byte count"),
        (b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding 'chunked' is not supported"),
    ],
    ids=["not a number", "negative", "two lengths", "chunked"],
)
def test_a_request_that_cannot_be_framed_gets_400_and_the_connection_is_closed(
    front: FrontEnd, framing: bytes, message: bytes
) -> None:
    answer = exchange(front, INVOKE + framing + b"\r\n39.1,")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"ValidationError" in answer, answer
    assert message in answer and b"Connection: close" in answer


def test_a_body_over_the_model_servers_limit_gets_413_before_it_is_read(front: FrontEnd) -> None:
    answer = exchange(front, INVOKE + b"Content-Length: %d\r\n\r\n" % (MAX_PAYLOAD_BYTES + 1))
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"InvokeEndpoint accepts at most %d" % MAX_PAYLOAD_BYTES in answer


@pytest.mark.parametrize(
    "sent",
    [
        INVOKE + b"X-Slow: a",
        INVOKE + b"Content-Length: 100\r\n\r\n",
        INVOKE + b"Content-Length: 100\r\n\r\n1,2",
    ],
    ids=["headers never end", "no body", "part of the body"],
)
def test_a_request_that_does_not_arrive_gets_408_after_the_timeout(front: FrontEnd, sent: bytes) -> None:
    started = time.monotonic()
    answer = exchange(front, sent)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 1 s" in answer, answer
    assert TIMEOUT - 0.2 <= time.monotonic() - started < TIMEOUT + 3


def test_headers_trickled_a_byte_at_a_time_still_time_out(front: FrontEnd) -> None:
    with connect(front) as sock:
        sock.sendall(INVOKE)
        sock.settimeout(0.2)
        started, answer = time.monotonic(), b""
        while not answer and time.monotonic() - started < TIMEOUT + 3:
            try:
                sock.sendall(b"X-Slow: a\r\n")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_an_idle_connection_is_closed_quietly_after_the_timeout(front: FrontEnd) -> None:
    started = time.monotonic()
    assert exchange(front, b"") == b""
    assert TIMEOUT - 0.2 <= time.monotonic() - started < TIMEOUT + 3
