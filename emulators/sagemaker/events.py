"""Model package state changes of the local registry, as EventBridge delivers SageMaker's.

Every write of a version of the watched group (a registration, an approval, a rejection, even one
that leaves the status as it was) becomes a ``SageMaker Model Package State Change`` event with the
version's state at the time it was seen. Like EventBridge, the watcher promises no order between
versions and may deliver a change late; consumers decide from the registry, not from the event.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from emulators.sagemaker.exceptions import RegistryError
from emulators.sagemaker.models import LocalRegistry, ModelPackage, now

SOURCE: Final = "aws.sagemaker"
DETAIL_TYPE: Final = "SageMaker Model Package State Change"
POLL_SECONDS: Final = 0.2

Event = dict[str, Any]


def package_state_change(package: ModelPackage) -> Event:
    """The EventBridge event SageMaker emits when ``package`` changes (its state as given)."""
    parts = package.arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 4 else ("us-east-1", "000000000000")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [package.arn],
        "detail": {
            "ModelPackageGroupName": package.group,
            "ModelPackageVersion": package.version,
            "ModelPackageArn": package.arn,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": package.approval_status,
            "ApprovalDescription": package.approval_description,
            "CreationTime": package.created_at.isoformat(),
        },
    }


def modified_ns(path: Path) -> int:
    """When a package file was last written (what the watcher and its readers compare)."""
    return path.stat().st_mtime_ns


class RegistryWatcher:
    """Polls one model package group and calls ``deliver(event)`` for every version written since."""

    def __init__(
        self,
        registry: LocalRegistry,
        group: str,
        deliver: Callable[[Event], None],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.registry = registry
        self.group = group
        self.deliver = deliver
        self.poll_seconds = poll_seconds
        self._seen = self._signatures()  # what exists at start is no change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _signatures(self) -> dict[Path, tuple[int, int, int]]:
        folder = self.registry.root / self.group
        found = {}
        for path in folder.glob("*.json") if folder.is_dir() else []:
            if path.stem.isdigit():
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    found[path] = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        return found

    def scan(self) -> int:
        """Deliver an event for each version written since the last scan; how many were delivered."""
        current = self._signatures()
        changed = sorted(p for p, signature in current.items() if self._seen.get(p) != signature)
        self._seen = current
        delivered = 0
        for path in changed:
            try:
                package = self.registry.get(f"{self.group}/{path.stem}")
            except RegistryError:
                continue  # removed between the listing and the read
            self.deliver(package_state_change(package))
            delivered += 1
        return delivered

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"registry-watch-{self.group}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.scan()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
