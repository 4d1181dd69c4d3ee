"""Deploy on approval, locally: model package state changes in, blue/green deployments out.

A thread of the process serving the endpoint. Events arrive as EventBridge delivers them (from
:class:`emulators.sagemaker.events.RegistryWatcher`, or :meth:`LocalDeployer.deliver`), possibly
duplicated, stale or out of order; whatever an event says, the decision is taken from the registry
as it is now and the package the endpoint serves, by ``rookery_contracts.deployment.decide`` (the
AWS deployer's function). One deployment at a time: changes that arrive during a deployment are
decided again, together, after it ends. Every decision is kept in the endpoint's record (with the
registry state it saw), which is how ``rookery local approve`` in another process finds the
deployment its approval caused and follows it (:func:`follow`).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from emulators.core.errors import EndpointError, LocalEngineError
from emulators.core.home import LocalHome
from emulators.sagemaker.events import POLL_SECONDS, Event, RegistryWatcher, modified_ns
from emulators.sagemaker.exceptions import RegistryError
from emulators.sagemaker.models import LocalRegistry, ModelPackage, now
from emulators.sagemaker_runtime.exceptions import EndpointNotFoundError
from emulators.sagemaker_runtime.models import (
    DEPLOYMENTS_DIR,
    LocalEndpoint,
    endpoint_record,
    running_endpoints,
)
from rookery_contracts.deployment import Decision, PackageVersion, decide

FOLLOW_POLL_SECONDS: Final = 0.1


class LocalDeployer:
    """Keeps ``endpoint`` on the highest approved version of ``group``."""

    def __init__(
        self,
        endpoint: LocalEndpoint,
        registry: LocalRegistry,
        group: str,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.registry = registry
        self.group = group
        self._events: queue.Queue[Event | None] = queue.Queue()
        self.watcher = RegistryWatcher(registry, group, self.deliver, poll_seconds=poll_seconds)
        self._thread: threading.Thread | None = None
        self._pending = 0  # events delivered and not decided yet
        self._settled = threading.Condition()

    def start(self, *, watch: bool = True) -> None:
        """Start deciding; ``watch``: also turn the registry's writes into events (else only
        :meth:`deliver` brings them)."""
        self._thread = threading.Thread(target=self._run, name=f"deployer-{self.endpoint.name}", daemon=True)
        self._thread.start()
        if watch:
            self.watcher.start()
        self.endpoint.note_deployer(True)

    def stop(self) -> None:
        """Stop watching and deciding (stop the endpoint first to abandon a deployment in progress)."""
        self.endpoint.note_deployer(False)
        self.watcher.stop()
        self._events.put(None)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def deliver(self, event: Event) -> None:
        """Hand over one model package state change (any order, duplicates welcome)."""
        with self._settled:
            self._pending += 1
        self._events.put(event)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivered event has been decided (and its deployment has ended)."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            batch = [event]
            with contextlib.suppress(queue.Empty):
                while True:
                    more = self._events.get_nowait()
                    if more is None:
                        self._events.put(None)
                        break
                    batch.append(more)
            try:
                self.decide_and_deploy(batch)
            except Exception as exc:  # a deployer that dies would leave every later approval undecided
                self.endpoint.note_decision(
                    {"Time": now().isoformat(), "Action": "error", "Reason": f"{type(exc).__name__}: {exc}"}
                )
            finally:
                with self._settled:
                    self._pending -= len(batch)
                    self._settled.notify_all()

    def decide_and_deploy(self, events: list[Event]) -> Decision | None:
        """Decide from the registry now; deploy when the decision changes the endpoint."""
        endpoint = self.endpoint
        if endpoint.stopping.is_set():
            return None
        note: dict[str, Any] = {
            "Time": now().isoformat(),
            "Events": [_event_summary(e) for e in events],
            "Registry": self._observed(),
            "DeploymentId": None,
        }
        try:
            packages = self.registry.packages(self.group)
        except (LocalEngineError, OSError, ValueError, KeyError) as exc:
            endpoint.note_decision({**note, "Action": "error", "Reason": f"cannot read the registry: {exc}"})
            return None
        for package in packages:
            note["Registry"].setdefault(str(package.version), {})["Status"] = package.approval_status
        versions = [PackageVersion(p.arn, p.version, p.approval_status) for p in packages]
        decision = decide(versions, endpoint.package.arn)
        note.update(
            {
                "Action": str(decision.action),
                "Reason": decision.reason,
                "Target": decision.target.arn if decision.target else None,
                "Live": decision.live.arn if decision.live else None,
            }
        )
        if not decision.changes_endpoint:
            endpoint.note_decision(note)
            return decision
        assert decision.target is not None
        target = next(p for p in packages if p.arn == decision.target.arn)
        note["DeploymentId"] = endpoint.new_deployment_id(target)
        endpoint.note_decision(note)
        try:
            endpoint.deploy(target, decision=decision, deployment_id=note["DeploymentId"])
        except EndpointError as exc:
            endpoint.note_decision({**note, "Error": str(exc)})
        return decision

    def _observed(self) -> dict[str, dict[str, Any]]:
        """When each version's file was last written, as the decision sees the registry."""
        folder = self.registry.root / self.group
        observed: dict[str, dict[str, Any]] = {}
        for path in folder.glob("*.json") if folder.is_dir() else []:
            if path.stem.isdigit():
                with contextlib.suppress(OSError):
                    observed[path.stem] = {"Modified": modified_ns(path)}
        return observed


def _event_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    detail = event.get("detail") or {}
    return {
        "id": event.get("id"),
        "ModelPackageVersion": detail.get("ModelPackageVersion"),
        "ModelApprovalStatus": detail.get("ModelApprovalStatus"),
    }


# -- following from another process ----------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """The deployer has not decided on the change yet (``busy``: a deployment is running)."""

    busy: str | None


@dataclass(frozen=True)
class Decided:
    decision: dict[str, Any]


@dataclass(frozen=True)
class Step:
    """A new entry of the deployment's timeline."""

    deployment: dict[str, Any]
    entry: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    deployment: dict[str, Any]


Followed = Waiting | Decided | Step | Finished


def served_endpoints(home: LocalHome, group: str) -> list[dict[str, Any]]:
    """The records of endpoints being served from ``group`` (deploy on approval watches it)."""
    return [r for r in running_endpoints(home) if r.get("ModelPackageGroupName") == group]


def follow(
    home: LocalHome,
    endpoint_name: str,
    version: int,
    written_ns: int,
    *,
    timeout: float | None = None,
) -> Iterator[Followed]:
    """What the endpoint's deployer does about version ``version``'s write at ``written_ns``.

    Yields ``Waiting`` (once per change of what it waits for), then ``Decided``, then, when the
    decision deploys, each timeline ``Step`` and ``Finished``. EndpointNotFoundError when the
    endpoint stops meanwhile; TimeoutError after ``timeout`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    decision: dict[str, Any] | None = None
    waiting_for: object = ()
    shown = 0
    while True:
        record = endpoint_record(home, endpoint_name)
        if record is None:
            raise EndpointNotFoundError(f"endpoint {endpoint_name!r} stopped before the deployment ended")
        if decision is None:
            decision = _decision_for(record, version, written_ns)
            if decision is None:
                current = record.get("CurrentDeployment") or {}
                busy = current.get("DeploymentId")
                if busy != waiting_for:
                    waiting_for = busy
                    yield Waiting(busy)
            else:
                yield Decided(decision)
                if not decision.get("DeploymentId"):
                    return
        if decision is not None:
            deployment = _deployment(home, endpoint_name, record, str(decision["DeploymentId"]))
            if deployment is not None:
                timeline = deployment.get("Timeline") or []
                for entry in timeline[shown:]:
                    yield Step(deployment, entry)
                shown = len(timeline)
                if deployment.get("Status") != "InProgress":
                    yield Finished(deployment)
                    return
            elif decision.get("Error"):
                raise EndpointError(str(decision["Error"]))
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {endpoint_name!r}: no outcome within {timeout} s")
        time.sleep(FOLLOW_POLL_SECONDS)


def _decision_for(record: Mapping[str, Any], version: int, written_ns: int) -> dict[str, Any] | None:
    for decision in record.get("Decisions") or []:
        seen = (decision.get("Registry") or {}).get(str(version)) or {}
        modified = seen.get("Modified")
        if isinstance(modified, int) and modified >= written_ns:
            return dict(decision)
    return None


def _deployment(
    home: LocalHome, endpoint_name: str, record: Mapping[str, Any], deployment_id: str
) -> dict[str, Any] | None:
    for key in ("CurrentDeployment", "LastDeployment"):
        deployment = record.get(key)
        if isinstance(deployment, dict) and deployment.get("DeploymentId") == deployment_id:
            return deployment
    path = home.endpoints_dir / endpoint_name / DEPLOYMENTS_DIR / f"{deployment_id}.json"
    with contextlib.suppress(OSError, ValueError):
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return found
    return None


def package_written(registry: LocalRegistry, ref: str) -> tuple[ModelPackage, int]:
    """The package and when its file was last written (what :func:`follow` waits on)."""
    package = registry.get(ref)
    if package.path is None:
        raise RegistryError(f"model package {ref} has no file in the local registry")
    return package, modified_ns(package.path)
