"""The endpoint's error contract over real HTTP, and the measured must-haves (TCP_NODELAY, readiness)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import pytest
from image_helpers import Endpoint, PipelineRun, Sandbox

from rookery_image import contract, server
from rookery_image.codec import Predictor
from rookery_image.model import ModelBundle

GOOD_CSV = b"39.1,18.7,181,3750,Adelie,Torgersen\n"
GOOD_RECORD = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "species": "Adelie",
    "island": "Torgersen",
}


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(
            method, path, body=body, headers=headers or {}, encode_chunked=not isinstance(body, bytes | None)
        )
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data.startswith(b"{") else {"raw": data.decode()}


def worker_pids(serve_pid: int) -> set[int]:
    """The serve process's worker processes (multiprocessing's resource tracker is not one)."""
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    return {int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()}


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    line = GOOD_CSV * (size // len(GOOD_CSV))
    sent = 0
    while sent < total:
        yield line
        sent += len(line)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (content type, body, status, what the message names)
BAD_PAYLOADS = [
    pytest.param("text/csv", b"", 400, "body is empty", id="empty body"),
    pytest.param("text/csv", b"\n\n", 400, "body is empty", id="blank lines only"),
    pytest.param("text/plain", GOOD_CSV, 415, "'text/plain' is not supported", id="wrong content type"),
    pytest.param(None, GOOD_CSV, 415, "no Content-Type", id="no content type"),
    pytest.param(
        "text/csv", b"39.1,18.7,181\n", 400, "record 1 has 3 fields; expected 6", id="too few fields"
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV + b"1,2,3,4,a,b,c\n",
        400,
        "record 2 has 7 fields",
        id="too many fields in record 2",
    ),
    pytest.param(
        "text/csv",
        b"39.1,deep,181,3750,Adelie,Torgersen\n",
        400,
        "field 'bill_depth_mm': 'deep' is not a number",
        id="non-numeric value",
    ),
    pytest.param(
        "text/csv",
        b"bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,species,island\n",
        400,
        "record 1, field 'bill_length_mm'",
        id="header row sent",
    ),
    pytest.param(
        "text/csv",
        b"39.1,18.7,181,3750,Adelie,Atlantis\n",
        400,
        "'Atlantis' is not a category the model knows",
        id="unknown category",
    ),
    pytest.param(
        "text/csv",
        b'39.1,18.7,181,3750,Adelie,"' + b"Torgersen " * 20_000 + b'"\n',
        400,
        "record 1, field 'island': 'Torgersen Torgersen",
        id="quoted value over csv's 128 KB field limit",
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV + b'39.1,18.7,181,3750,"Adelie",Torg\rersen\n',
        400,
        r"record 2 (line 2) is not valid CSV: a carriage return (\r) inside an unquoted field; quote a field",
        id="lone carriage return (csv.Error)",
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV + b'39.1,18.7,181,3750,"Adelie,Torgersen\n' + GOOD_CSV,
        400,
        'record 2 (line 2) is not valid CSV: a quoted field there is never closed (an unclosed ")',
        id="unclosed quote",
    ),
    pytest.param(
        "text/csv",
        b"39.1,18.7,181,3750,Adelie,Torg\x0cersen\n",
        400,
        r"record 1, field 'island': 'Torg\x0cersen' is not a category the model knows",
        id="form feed inside a category",
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV + '39.1,18.7,181,3750,"Adelie",Dream\u2028\n'.encode(),
        400,
        r"record 2, field 'island': 'Dream\u2028' is not a category the model knows",
        id="line separator inside a category, quoted body",
    ),
    pytest.param(
        "application/json",
        json.dumps([GOOD_RECORD, {**GOOD_RECORD, "species": "Emperor"}]).encode(),
        400,
        "record 2, field 'species'",
        id="unknown category in JSON record 2",
    ),
    pytest.param(
        "application/json",
        json.dumps({**GOOD_RECORD, "body_mass_g": "heavy"}).encode(),
        400,
        "field 'body_mass_g': 'heavy' is not a number",
        id="JSON number field is text",
    ),
    pytest.param(
        "application/json",
        json.dumps({k: v for k, v in GOOD_RECORD.items() if k != "island"}).encode(),
        400,
        "lacks field(s) ['island']",
        id="JSON field missing",
    ),
    pytest.param(
        "application/json",
        json.dumps({**GOOD_RECORD, "island": {"name": "Dream"}}).encode(),
        400,
        "field 'island': a dict is not a category",
        id="JSON nested value",
    ),
    pytest.param("application/json", b"42", 400, "the JSON body is a int", id="JSON scalar"),
    pytest.param("application/json", b"[[1, 2]]", 400, "record 1 is a JSON list", id="JSON list of lists"),
    pytest.param("application/json", b"[]", 400, "holds no records", id="empty JSON list"),
    pytest.param("application/json", b'{"bill_length_mm": 39.1,', 400, "not valid JSON", id="malformed JSON"),
    pytest.param("application/json", nested(100_000), 400, "not valid JSON", id="deeply nested JSON"),
    pytest.param(
        "application/jsonlines",
        json.dumps(GOOD_RECORD).encode() + b"\n{oops\n",
        400,
        "record 2 (line 2) is not valid JSON",
        id="malformed JSON line 2",
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV + b"39.1,18.7,181,3750,Adelie,Torg\xff\xfesen\n",
        400,
        "record 2: the body is not valid UTF-8",
        id="invalid UTF-8 CSV",
    ),
    pytest.param(
        "application/json", b'{"island": "\xc3\x28"}', 400, "not valid UTF-8", id="invalid UTF-8 JSON"
    ),
    pytest.param(
        "text/csv",
        GOOD_CSV * (7 * 1024 * 1024 // len(GOOD_CSV)),
        413,
        "the limit is 6291456 bytes",
        id="7 MB body",
    ),
]


@pytest.mark.slow
@pytest.mark.xdist_group("image-penguins")
@pytest.mark.parametrize(("content_type", "body", "status", "message"), BAD_PAYLOADS)
def test_bad_payloads_get_status_and_reason(
    penguins_endpoint: Endpoint, content_type: str | None, body: bytes, status: int, message: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    got, answer = request(penguins_endpoint.url, "POST", "/invocations", body, headers)
    assert got == status, answer
    assert message in answer["error"], answer
    assert request(penguins_endpoint.url, "GET", "/ping")[0] == 200


@pytest.mark.slow
@pytest.mark.xdist_group("image-penguins")
def test_protocol_errors(penguins_endpoint: Endpoint) -> None:
    status, answer = request(
        penguins_endpoint.url,
        "POST",
        "/invocations",
        GOOD_CSV,
        {"Content-Type": "text/csv", "Accept": "image/png"},
    )
    assert status == 406 and "image/png" in answer["error"]
    assert request(penguins_endpoint.url, "GET", "/invocations")[0] == 405
    assert request(penguins_endpoint.url, "GET", "/predict")[0] == 404
    # A streamed (chunked) 7 MB body has no Content-Length: the limit holds while reading.
    status, answer = request(
        penguins_endpoint.url, "POST", "/invocations", chunks(7 * 1024 * 1024), {"Content-Type": "text/csv"}
    )
    assert status == 413 and "more than" in answer["error"]
    status, params = request(penguins_endpoint.url, "GET", "/execution-parameters")
    assert status == 200 and params == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


@pytest.mark.slow
@pytest.mark.xdist_group("image-penguins")
def test_bad_requests_never_take_a_worker_down(penguins_endpoint: Endpoint) -> None:
    before = worker_pids(penguins_endpoint.pid)
    assert len(before) == 2, "SAGEMAKER_MODEL_SERVER_WORKERS=2 runs two workers"
    for case in BAD_PAYLOADS * 2:
        content_type, body = cast(str | None, case.values[0]), cast(bytes, case.values[1])
        headers = {"Content-Type": content_type} if content_type else {}
        request(penguins_endpoint.url, "POST", "/invocations", body, headers)
    assert worker_pids(penguins_endpoint.pid) == before
    status, answer = request(
        penguins_endpoint.url, "POST", "/invocations", GOOD_CSV, {"Content-Type": "text/csv"}
    )
    assert status == 200 and answer["raw"].endswith(",male\n")


def test_listening_socket_sets_tcp_nodelay_on_accepted_connections() -> None:
    """Without TCP_NODELAY, Nagle + delayed ACK add about 40 ms to every POST answer."""
    listener = server.listening_socket("127.0.0.1", 0)
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        for sock in (accepted, client, listener):
            sock.close()


def _call(app: server.InferenceApp, path: str, method: str = "GET") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "path": path, "method": method, "headers": [(b"content-type", b"text/csv")]}
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def test_ping_is_503_until_the_model_is_loaded() -> None:
    app = server.InferenceApp()
    assert _call(app, "/ping") == 503
    assert _call(app, "/invocations", "POST") == 503


def test_failed_model_load_fails_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose model cannot load reports lifespan.startup.failed (uvicorn then stops the server)."""
    (tmp_path / "model").mkdir()
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    asyncio.run(server.InferenceApp()({"type": "lifespan"}, receive, send))
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "lacks ['xgboost-model.ubj', 'preprocessor.json', 'metadata.json']" in sent[0]["message"]


def test_serve_without_a_model_fails_with_a_reason(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    result = sandbox.run("serve", timeout=60, SAGEMAKER_BIND_TO_PORT="1")
    assert result.returncode == 1
    assert sandbox.failure.startswith("UserError: model folder")
    assert "model.tar.gz written by rookery's train entrypoint" in sandbox.failure


def test_a_body_that_stops_arriving_times_out() -> None:
    """SAGEMAKER_MODEL_SERVER_TIMEOUT bounds how long a worker waits for the rest of a body (408)."""
    app = server.InferenceApp()
    app.settings = contract.ServingSettings.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "1"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the client went quiet mid-body
        return {}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    assert asyncio.run(app._body(receive, send)) is None
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"] == "the request body did not arrive within 1 s"


@pytest.mark.slow
@pytest.mark.xdist_group("image-penguins")
def test_unknown_categories_can_be_ignored(penguins: PipelineRun) -> None:
    """ROOKERY_UNKNOWN_CATEGORY=ignore answers for an unseen level instead of refusing the record."""
    bundle = ModelBundle.load(penguins.model_dir)
    body = b"39.1,18.7,181,3750,Adelie,Atlantis\n"
    assert Predictor(bundle).invoke(body, "text/csv", None)[0] == 400
    status, media, answer = Predictor(bundle, unknown_category="ignore").invoke(body, "text/csv", None)
    assert status == 200 and media == b"text/csv" and answer.decode().count(",") == 1
    # A form feed inside a value is part of the value (one record), so the same handling applies.
    body = b"39.1,18.7,181,3750,Adelie,Torg\x0cersen\n39.1,18.7,181,3750,Adelie,Dream\n"
    status, _, answer = Predictor(bundle, unknown_category="ignore").invoke(body, "text/csv", None)
    assert status == 200 and answer.decode().count("\n") == 2
