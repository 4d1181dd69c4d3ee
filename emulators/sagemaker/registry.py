"""The local model registry: model package groups and versions under ``<home>/registry/<group>/``.

A RegisterModel step writes ``<version>.json`` (versions count from 1 per group, as SageMaker's
do) with the approval status, the resolved inference specification and the metrics loaded from
the package's ModelMetrics (``evaluation.json``). ``approve`` is what a reviewer does in Studio.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from emulators.core.errors import RegistryError
from emulators.core.files import write_whole
from emulators.core.home import LocalHome
from emulators.sagemaker.records import now

APPROVAL_STATUSES: Final = ("PendingManualApproval", "Approved", "Rejected")
_ARN: Final = re.compile(r"^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]+):(\d{12}):model-package/([^/]+)/(\d+)$")
_SHORT: Final = re.compile(r"^([A-Za-z0-9](?:-*[A-Za-z0-9]){0,62})/(\d+)$")


def package_arn(region: str, account: str, group: str, version: int) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group.lower()}/{version}"


@dataclass
class ModelPackage:
    group: str
    version: int
    arn: str
    approval_status: str
    created_at: dt.datetime
    # evaluation.json as loaded from the package's ModelMetrics (ModelQuality.Statistics).
    metrics: dict[str, Any]
    # Resolved: image, model_data_url, environment, content_types, response_types.
    inference_spec: dict[str, Any]
    execution_id: str | None
    approval_description: str | None = None
    model_metrics: dict[str, Any] = field(default_factory=dict)  # the ModelMetrics URIs as registered
    path: Path | None = None

    @property
    def ref(self) -> str:
        return f"{self.group}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ModelPackageGroupName": self.group,
            "ModelPackageVersion": self.version,
            "ModelPackageArn": self.arn,
            "ModelApprovalStatus": self.approval_status,
            "ApprovalDescription": self.approval_description,
            "CreationTime": self.created_at.isoformat(),
            "ModelPackageStatus": "Completed",
            "ExecutionId": self.execution_id,
            "InferenceSpec": self.inference_spec,
            "ModelMetrics": self.model_metrics,
            "Metrics": self.metrics,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], path: Path) -> ModelPackage:
        return cls(
            group=raw["ModelPackageGroupName"],
            version=int(raw["ModelPackageVersion"]),
            arn=raw["ModelPackageArn"],
            approval_status=raw["ModelApprovalStatus"],
            approval_description=raw.get("ApprovalDescription"),
            created_at=dt.datetime.fromisoformat(raw["CreationTime"]),
            execution_id=raw.get("ExecutionId"),
            inference_spec=dict(raw.get("InferenceSpec") or {}),
            model_metrics=dict(raw.get("ModelMetrics") or {}),
            metrics=dict(raw.get("Metrics") or {}),
            path=path,
        )


class LocalRegistry:
    """Model package groups and their versions, under ``<home>/registry``."""

    def __init__(self, home: LocalHome) -> None:
        self.home = home
        self.root = home.registry_dir

    def packages(self, group: str | None = None) -> list[ModelPackage]:
        if not self.root.is_dir():
            return []
        groups = [self.root / group] if group else sorted(p for p in self.root.iterdir() if p.is_dir())
        found = []
        for folder in groups:
            for path in folder.glob("*.json"):
                if path.stem.isdigit():
                    found.append(self._read(path))
        return sorted(found, key=lambda p: (p.group, p.version))

    def get(self, ref: str) -> ModelPackage:
        """``<group>/<version>`` or the package ARN."""
        group, version = self._parse(ref)
        path = self.root / group / f"{version}.json"
        if not path.is_file():
            known = ", ".join(p.ref for p in self.packages()) or "none yet (run the pipeline first)"
            raise RegistryError(f"no model package {ref!r} in the local registry; known: {known}")
        return self._read(path)

    def approve(self, ref: str, *, description: str | None = None) -> ModelPackage:
        return self.set_status(ref, "Approved", description=description)

    def set_status(self, ref: str, status: str, *, description: str | None = None) -> ModelPackage:
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
        package = self.get(ref)
        with self._locked(package.group):
            package.approval_status = status
            if description is not None:
                package.approval_description = description
            self._write(package)
        return package

    def latest_approved(self, group: str) -> ModelPackage:
        approved = [p for p in self.packages(group) if p.approval_status == "Approved"]
        if not approved:
            pending = [p.ref for p in self.packages(group)]
            hint = (
                f"approve one with `rookery local approve {pending[-1]}`"
                if pending
                else "run the pipeline first (`rookery local run`), then approve the registered version"
            )
            raise RegistryError(
                f"model package group {group!r} has no Approved version "
                f"(versions: {', '.join(pending) or 'none'}); {hint}"
            )
        return approved[-1]

    def create(
        self,
        group: str,
        *,
        region: str,
        account: str,
        approval_status: str,
        inference_spec: dict[str, Any],
        model_metrics: dict[str, Any],
        metrics: dict[str, Any],
        execution_id: str | None,
        description: str | None = None,
    ) -> ModelPackage:
        """A new version of ``group`` (the next number; safe when runs register at once)."""
        if approval_status not in APPROVAL_STATUSES:
            raise RegistryError(
                f"ModelApprovalStatus {approval_status!r} is not one of {', '.join(APPROVAL_STATUSES)}"
            )
        if not re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}", group):
            raise RegistryError(f"model package group name {group!r} must be letters, digits and hyphens")
        with self._locked(group):
            versions = [int(p.stem) for p in (self.root / group).glob("*.json") if p.stem.isdigit()]
            version = max(versions, default=0) + 1
            package = ModelPackage(
                group=group,
                version=version,
                arn=package_arn(region, account, group, version),
                approval_status=approval_status,
                approval_description=description,
                created_at=now(),
                metrics=metrics,
                inference_spec=inference_spec,
                model_metrics=model_metrics,
                execution_id=execution_id,
                path=self.root / group / f"{version}.json",
            )
            self._write(package)
        return package

    def _parse(self, ref: str) -> tuple[str, int]:
        text = ref.strip()
        match = _ARN.match(text)
        if match:
            wanted = match.group(3)
            names = [p.name for p in self.root.iterdir()] if self.root.is_dir() else []
            # ARNs carry the group name in lower case; find the group as it was created.
            group = next((n for n in names if n.lower() == wanted), wanted)
            return group, int(match.group(4))
        match = _SHORT.match(text)
        if match:
            return match.group(1), int(match.group(2))
        raise RegistryError(
            f"{ref!r} is not a model package reference; write <group>/<version> (e.g. rookery-dev-models/1) "
            "or the ARN arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"
        )

    def _read(self, path: Path) -> ModelPackage:
        try:
            return ModelPackage.from_json(json.loads(path.read_text(encoding="utf-8")), path)
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(
                f"cannot read model package {path}: {exc}; delete or repair the file"
            ) from None

    def _write(self, package: ModelPackage) -> None:
        target = self.root / package.group / f"{package.version}.json"
        package.path = write_whole(target, json.dumps(package.to_json(), indent=2).encode())

    @contextlib.contextmanager
    def _locked(self, group: str) -> Iterator[None]:
        folder = self.root / group
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
