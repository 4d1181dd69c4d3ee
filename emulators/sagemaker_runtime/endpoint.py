"""A SageMaker Runtime compatible endpoint on 127.0.0.1 for a registered model package.

``POST /endpoints/<name>/invocations`` answers like InvokeEndpoint: the body goes to the model's
own ``serve`` entrypoint (ContentType and Accept passed through), the answer comes back with
``x-Amzn-Invoked-Production-Variant``; a model error becomes SageMaker's ``ModelError`` (HTTP 424,
``OriginalStatusCode``, ``OriginalMessage``), so an unmodified boto3 ``sagemaker-runtime`` client
with ``endpoint_url`` and any credentials raises ``ModelError`` exactly as against AWS.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import unquote, urlsplit

from emulators.core.errors import EndpointError, LocalEngineError
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.core.serving import ServeError, ServeProcess
from emulators.s3 import LocalS3
from emulators.sagemaker.models import ModelPackage, now

ENDPOINT_FILE: Final = "endpoint.json"
VARIANT: Final = "AllTraffic"
_NAME: Final = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PATH: Final = re.compile(r"^/endpoints/([^/]+)/invocations$")
_PASS_HEADERS: Final = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes")


def endpoint_record(home: LocalHome, name: str) -> dict[str, Any] | None:
    """The running endpoint's record (url, package, pid), or None when it is not being served."""
    path = home.endpoints_dir / name / ENDPOINT_FILE
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = record.get("Pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return record


def running_endpoints(home: LocalHome) -> list[dict[str, Any]]:
    if not home.endpoints_dir.is_dir():
        return []
    found = [endpoint_record(home, p.name) for p in sorted(home.endpoints_dir.iterdir()) if p.is_dir()]
    return sorted((r for r in found if r), key=lambda r: str(r.get("CreationTime")), reverse=True)


def find_endpoint(home: LocalHome, name: str | None = None) -> dict[str, Any]:
    """The record of running endpoint ``name``, or of the newest running endpoint when no name is given."""
    if name:
        record = endpoint_record(home, name)
        if record is None:
            raise EndpointError(
                f"endpoint {name!r} is not running; start it with `rookery local serve --name {name}`"
            )
        return record
    running = running_endpoints(home)
    if not running:
        raise EndpointError("no local endpoint is running; start one with `rookery local serve`")
    return running[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalEndpoint:
    """One served model package; a context manager that stops the model server on exit."""

    def __init__(self, name: str, package: ModelPackage, model: ServeProcess, folder: Path) -> None:
        self.name = name
        self.package = package
        self.model = model
        self.folder = folder
        account, region = _account_region(package.arn)
        self.account = account
        self.region = region
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @classmethod
    def start(
        cls, home: LocalHome, images: ImageMap, package: ModelPackage, *, name: str, port: int = 0
    ) -> LocalEndpoint:
        """Serve ``package`` as endpoint ``name`` on ``127.0.0.1:port`` (0: any free port)."""
        if not _NAME.match(name):
            raise EndpointError(f"endpoint name {name!r} must be 1-63 letters, digits and hyphens")
        running = endpoint_record(home, name)
        if running is not None:
            raise EndpointError(
                f"endpoint {name!r} is already served at {running.get('Url')} "
                f"by process {running.get('Pid')}; "
                "stop it (Ctrl-C) or choose another --name"
            )
        spec = package.inference_spec
        try:
            archive = LocalS3(home).path(str(spec.get("model_data_url")))
        except LocalEngineError as exc:
            raise EndpointError(f"model package {package.ref}: {exc}") from None
        if not archive.is_file():
            raise EndpointError(
                f"model package {package.ref}: its model {spec.get('model_data_url')} is missing "
                f"(no {archive})"
            )
        folder = home.endpoints_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            model = ServeProcess.start(
                images,
                str(spec.get("image")),
                archive,
                sandbox=folder / "container",
                environment=dict(spec.get("environment") or {}),
                log_path=folder / "model.log",
            )
        except (ServeError, ValueError) as exc:
            raise EndpointError(
                f"endpoint {name!r} could not start model package {package.ref}: {exc}"
            ) from None
        endpoint = cls(name, package, model, folder)
        try:
            endpoint._listen(port)
        except OSError as exc:
            model.stop()
            raise EndpointError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port"
            ) from None
        return endpoint

    def _listen(self, port: int) -> None:
        handler = type("Handler", (_Handler,), {"endpoint": self})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"endpoint-{self.name}", daemon=True
        )
        self._thread.start()
        record = {
            "EndpointName": self.name,
            "EndpointArn": f"arn:aws:sagemaker:{self.region}:{self.account}:endpoint/{self.name.lower()}",
            "EndpointStatus": "InService",
            "Url": self.url,
            "ModelPackageArn": self.package.arn,
            "ModelPackage": self.package.ref,
            "ModelUrl": self.model.url,
            "Pid": os.getpid(),
            "CreationTime": now().isoformat(),
            "Log": str(self.model.log_path),
        }
        (self.folder / ENDPOINT_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.model.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.folder / ENDPOINT_FILE).unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _account_region(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    if len(parts) > 4 and parts[4].isdigit():
        return parts[4], parts[3]
    return "000000000000", "us-east-1"


class _Handler(BaseHTTPRequestHandler):
    """InvokeEndpoint's wire format (rest-json): what botocore sends and parses."""

    endpoint: LocalEndpoint
    protocol_version = "HTTP/1.1"
    server_version = "rookery-local-runtime"
    _local = threading.local()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the model server keeps the log; the front stays quiet

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", os.urandom(16).hex())
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
        body = json.dumps({"__type": code, "message": message, "Message": message, **extra}).encode()
        self._send(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})

    def do_GET(self) -> None:
        self._read_body()
        self._error(
            404, "UnknownOperationException", "only POST /endpoints/<name>/invocations is served here"
        )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        body = self._read_body()
        endpoint = self.endpoint
        match = _PATH.match(urlsplit(self.path).path)
        if match is None:
            self._error(404, "UnknownOperationException", f"no operation at {self.path}")
            return
        name = unquote(match.group(1))
        if name != endpoint.name:
            self._error(400, "ValidationError", f"Endpoint {name} of account {endpoint.account} not found.")
            return
        headers = {key: self.headers[key] for key in _PASS_HEADERS if self.headers.get(key)}
        try:
            status, answer, answer_headers = self._forward(body, headers)
        except OSError as exc:
            self._error(
                500,
                "InternalFailure",
                f"the model container is not answering ({exc}); see {endpoint.model.log_path}",
            )
            return
        if status == 200:
            out = {
                "Content-Type": answer_headers.get("content-type", "application/octet-stream"),
                "x-Amzn-Invoked-Production-Variant": VARIANT,
            }
            if answer_headers.get("X-Amzn-SageMaker-Custom-Attributes"):
                out["X-Amzn-SageMaker-Custom-Attributes"] = answer_headers[
                    "X-Amzn-SageMaker-Custom-Attributes"
                ]
            self._send(200, answer, out)
            return
        original = answer.decode("utf-8", errors="replace")
        kind = "client" if status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{endpoint.name}"
        self._error(
            424,
            "ModelError",
            f'Received {kind} error ({status}) from primary with message "{original}". '
            f"See the model log {endpoint.model.log_path} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=original,
            LogStreamArn=f"arn:aws:logs:{endpoint.region}:{endpoint.account}:log-group:{log_group}",
            ErrorCode=f"{kind.upper()}_ERROR_FROM_MODEL",
        )

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        target = urlsplit(self.endpoint.model.url)
        for attempt in (1, 2):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(str(target.hostname), target.port, timeout=60)
                self._local.connection = connection
            try:
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                body = response.read()
                # Header names compared case-insensitively (the model server sends them in lower case).
                return response.status, body, {k.lower(): v for k, v in response.getheaders()}
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")
