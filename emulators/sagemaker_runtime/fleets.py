"""Fleets and traffic: the model servers behind the endpoint and how requests are shared among them.

A :class:`Fleet` is the instances serving one model package. Locally one ``serve`` process stands
for the whole fleet (the stage's instance count is what SageMaker would run; shares are computed
from it). The :class:`Router` splits live traffic among fleets by weight, deterministically (smooth
weighted round robin: after ``n`` requests each fleet has had its share of them to within one), and
counts each fleet's requests in flight, so a fleet is stopped only after the last request it took
has been answered: a traffic switch never drops a request.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from emulators.core.errors import EndpointError, LocalEngineError
from emulators.core.home import LocalHome
from emulators.core.images import ImageError, ImageMap
from emulators.core.serving import ServeError, ServeProcess
from emulators.s3 import LocalS3
from emulators.sagemaker.models import ModelPackage

# SageMaker's InvokeEndpoint waits at most 60 s for the container's answer.
MODEL_TIMEOUT_SECONDS: Final = 60.0


@dataclass(frozen=True)
class ModelAnswer:
    """The container's answer to one ``POST /invocations``, and how long it took."""

    status: int
    body: bytes
    headers: Mapping[str, str]  # names in lower case
    seconds: float


class Fleet:
    """The instances serving one model package (one ``serve`` process stands for all of them)."""

    def __init__(self, fleet_id: str, package: ModelPackage, server: ServeProcess, instances: int) -> None:
        self.id = fleet_id
        self.package = package
        self.server = server
        self.instances = instances
        target = urlsplit(server.url)
        self._host = str(target.hostname)
        self._port = int(target.port or 80)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._inflight = 0
        self._settled = threading.Condition(self._lock)
        self.stopped = False

    @classmethod
    def start(
        cls,
        home: LocalHome,
        images: ImageMap,
        package: ModelPackage,
        *,
        fleet_id: str,
        folder: Path,
        instances: int,
    ) -> Fleet:
        """Start ``package``'s container and wait for ``GET /ping``; EndpointError says why it did not."""
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
        try:
            server = ServeProcess.start(
                images,
                str(spec.get("image")),
                archive,
                sandbox=folder / "container",
                environment=dict(spec.get("environment") or {}),
                log_path=folder / "model.log",
            )
        except (ServeError, ImageError) as exc:
            raise EndpointError(f"model package {package.ref} did not pass its health check: {exc}") from None
        return cls(fleet_id, package, server, instances)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def log_path(self) -> Path:
        return self.server.log_path

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def begin(self) -> None:
        with self._lock:
            self._inflight += 1

    def end(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._settled.notify_all()

    def drain(self, timeout: float = MODEL_TIMEOUT_SECONDS + 5) -> bool:
        """Wait until no request is in flight (the router sends it none any more); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
        return True

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> ModelAnswer:
        """``POST /invocations`` on a kept-alive connection; OSError when the container is not answering."""
        reused, connection = self._connection()
        while True:
            started = time.perf_counter()
            try:
                connection.request("POST", "/invocations", body=body, headers=dict(headers))
                response = connection.getresponse()
                answer = response.read()
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                if not reused:
                    raise
                # A kept-alive connection the container closed while it was idle: once more, on a new one.
                reused, connection = False, self._new_connection()
                continue
            seconds = time.perf_counter() - started
            if response.will_close:
                connection.close()
            else:
                self._release(connection)
            return ModelAnswer(
                response.status, answer, {k.lower(): v for k, v in response.getheaders()}, seconds
            )

    def _connection(self) -> tuple[bool, http.client.HTTPConnection]:
        with self._lock:
            if self._idle:
                return True, self._idle.pop()
        return False, self._new_connection()

    def _new_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=MODEL_TIMEOUT_SECONDS)

    def _release(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self.stopped:
                self._idle.append(connection)
                return
        connection.close()

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        self.server.stop()


@dataclass
class _Route:
    fleet: Fleet
    weight: float
    credit: float = 0.0


class Router:
    """Live traffic among fleets by weight; the fleet a request goes to counts it in flight until it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: list[_Route] = []

    def route(self, weights: Mapping[Fleet, float]) -> None:
        """Send traffic to these fleets in these proportions from the next request on.

        A fleet left out gets no new request; the requests it already took finish there.
        """
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum: {dict(weights)}")
        with self._lock:
            credits = {id(r.fleet): r.credit for r in self._routes}
            self._routes = [
                _Route(fleet, weight, credits.get(id(fleet), 0.0))
                for fleet, weight in weights.items()
                if weight > 0
            ]

    def shares(self) -> dict[str, float]:
        """Each routed fleet's share of new requests, by fleet id."""
        with self._lock:
            total = sum(r.weight for r in self._routes)
            return {r.fleet.id: r.weight / total for r in self._routes}

    def acquire(self) -> Fleet | None:
        """The fleet the next request goes to (counted in flight: call ``fleet.end()``), or None."""
        with self._lock:
            if not self._routes:
                return None
            total = 0.0
            best: _Route | None = None
            for route in self._routes:
                route.credit += route.weight
                total += route.weight
                if best is None or route.credit > best.credit:
                    best = route
            assert best is not None
            best.credit -= total
            best.fleet.begin()
            return best.fleet
