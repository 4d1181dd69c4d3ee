"""The image's ``serve`` entrypoint on 127.0.0.1, for batch transform and local endpoints.

``model.tar.gz`` is extracted into ``<sandbox>/model`` (SageMaker's ``/opt/ml/model``), the model's
container environment is applied, and the process is ready once ``GET /ping`` answers 200.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Self

from emulators.core.files import fresh_dir
from emulators.core.images import ImageMap
from rookery_contracts.env import BIND_HOST_ENV, BIND_PORT_ENV, SERVER_WORKERS_ENV

START_TIMEOUT_SECONDS: Final = 60.0


class ServeError(RuntimeError):
    """The serve entrypoint did not come up; the message carries its own reason or log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def extract_model(archive: Path, target: Path) -> None:
    """Unpack ``model.tar.gz`` as SageMaker does into /opt/ml/model (no absolute or climbing paths)."""
    fresh_dir(target)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ServeError(f"cannot extract the model archive {archive}: {exc}") from None


class ServeProcess:
    """One running ``serve`` process; stop it with :meth:`stop` or use it as a context manager."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, sandbox: Path, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.sandbox = sandbox
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        images: ImageMap,
        image_uri: str,
        model_archive: Path,
        *,
        sandbox: Path,
        environment: Mapping[str, str],
        log_path: Path,
        port: int | None = None,
        workers: int | None = None,
    ) -> Self:
        extract_model(model_archive, sandbox / "model")
        argv = images.command(image_uri, None, default="serve")
        chosen = port or free_port()
        extra = {str(k): str(v) for k, v in environment.items()}
        extra.update({BIND_PORT_ENV: str(chosen), BIND_HOST_ENV: "127.0.0.1"})
        if workers is not None:
            extra[SERVER_WORKERS_ENV] = str(workers)
        env = images.environment(image_uri, sandbox, extra)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=sandbox,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = cls(process, f"http://127.0.0.1:{chosen}", sandbox, log_path)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServeError(
                    f"the serve entrypoint exited with code {self.process.returncode}: {self.reason()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            time.sleep(0.05)
        raise ServeError(f"the serve entrypoint did not answer /ping within {timeout:.0f} s: {self.reason()}")

    def reason(self) -> str:
        """Why the server did not come up: its failure file, else its first logged error, else the log."""
        failure = self.sandbox / "output" / "failure"
        if failure.is_file():
            return failure.read_text(encoding="utf-8").strip()
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            lines = []
        # The first error is the cause; what follows it (workers stopping) is its consequence.
        errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
        if errors:
            return f"{errors[0]} (see {self.log_path})"
        return " | ".join(lines[-5:]) or f"see {self.log_path}"

    def execution_parameters(self) -> dict[str, Any]:
        """``GET /execution-parameters`` (batch transform asks the container); {} when not offered."""
        try:
            with urllib.request.urlopen(f"{self.url}/execution-parameters", timeout=5) as response:
                answer = json.loads(response.read())
                return answer if isinstance(answer, dict) else {}
        except (OSError, ValueError, urllib.error.HTTPError):
            return {}

    def stop(self, grace: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
