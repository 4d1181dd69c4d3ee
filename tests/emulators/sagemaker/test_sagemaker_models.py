"""The model registry: versions, references by name or ARN, approval (``emulators/sagemaker/models.py``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from emulators.core.home import LocalHome
from emulators.sagemaker import LocalRegistry, RegistryError


def _register(registry: LocalRegistry, status: str = "PendingManualApproval") -> Any:
    return registry.create(
        "models",
        region="eu-west-1",
        account="123456789012",
        approval_status=status,
        inference_spec={"image": "img", "model_data_url": "s3://b/m.tar.gz"},
        model_metrics={},
        metrics={"auc": 0.9},
        execution_id="e1",
    )


def test_registry_versions_count_up_even_when_registered_at_once(tmp_path: Path) -> None:
    registry = LocalRegistry(LocalHome(tmp_path))
    threads = [threading.Thread(target=_register, args=(registry,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.version for p in registry.packages("models")] == list(range(1, 9))


def test_registry_references_approval_and_latest_approved(tmp_path: Path) -> None:
    registry = LocalRegistry(LocalHome(tmp_path))
    first, second = _register(registry), _register(registry)
    assert second.arn == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/models/2"
    assert registry.get(second.arn).version == 2 and registry.get("models/1").version == 1
    with pytest.raises(RegistryError, match="approve one with `rookery local approve models/2`"):
        registry.latest_approved("models")
    registry.approve(first.ref, description="reviewed")
    assert registry.latest_approved("models").ref == "models/1"
    assert registry.get("models/1").approval_description == "reviewed"
    with pytest.raises(RegistryError, match="no model package 'models/3'"):
        registry.get("models/3")
    with pytest.raises(RegistryError, match="not one of"):
        _register(registry, status="Maybe")
