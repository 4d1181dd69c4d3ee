"""Steady traffic through boto3's ``sagemaker-runtime`` client: what clients see while an endpoint changes.

A few client threads, each with its own client and kept-alive connection, call ``invoke_endpoint``
back to back (one attempt, no retries, so every failure shows) and record each call: when it
started, how long it took, and the error code when it failed. The demo, the deployment benchmark
and the tests read the same record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from emulators.sagemaker_runtime.client import runtime_client


@dataclass(frozen=True)
class Call:
    started: float  # time.monotonic()
    seconds: float
    error: str | None  # the ClientError code (ModelError, ...) or the exception type; None: it succeeded
    inference_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SteadyTraffic:
    """``clients`` threads calling the endpoint until the context ends."""

    def __init__(
        self,
        endpoint_url: str,
        endpoint_name: str,
        body: bytes,
        *,
        content_type: str = "text/csv",
        clients: int = 2,
        region: str = "us-east-1",
        inference_ids: bool = False,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.endpoint_name = endpoint_name
        self.body = body
        self.content_type = content_type
        self.clients = clients
        self.region = region
        self.inference_ids = inference_ids
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        for number in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(number,), name=f"traffic-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, number: int) -> None:
        client = runtime_client(self.endpoint_url, self.region)
        sequence = 0
        while not self._stop.is_set():
            request: dict[str, Any] = {
                "EndpointName": self.endpoint_name,
                "ContentType": self.content_type,
                "Body": self.body,
            }
            inference_id = f"client-{number}-{sequence}" if self.inference_ids else None
            if inference_id:
                request["InferenceId"] = inference_id
            sequence += 1
            started = time.monotonic()
            error = None
            try:
                # Reading the body lets the connection be kept alive for the next call.
                client.invoke_endpoint(**request)["Body"].read()
            except ClientError as exc:
                error = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            except BotoCoreError as exc:
                error = type(exc).__name__
            with self._lock:
                self._calls.append(Call(started, time.monotonic() - started, error, inference_id))

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def started_between(self, start: float, end: float) -> list[Call]:
        """The calls that started in ``[start, end)`` (monotonic seconds)."""
        return [c for c in self.calls if start <= c.started < end]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Block until at least ``count`` calls have finished (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.calls)} of {count} calls in {timeout} s")
            time.sleep(0.01)
