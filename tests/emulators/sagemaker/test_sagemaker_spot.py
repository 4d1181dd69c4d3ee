"""Spot interruptions (``emulators/sagemaker/steps/spot.py``): a checkpoint trigger fires on a new
checkpoint file only; a trigger on a log line runs a process in tests/emulators/core/test_core_procs.py."""

from __future__ import annotations

from pathlib import Path

from emulators.core import procs
from emulators.sagemaker import InterruptPlan
from emulators.sagemaker.steps.spot import Trigger


def test_a_checkpoint_trigger_fires_only_on_a_new_file(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("{}")
    trigger = Trigger(InterruptPlan(on_checkpoint=True), tmp_path)
    watch = procs.Watch(started=0.0)
    assert not trigger(watch)
    (tmp_path / "new.json").write_text("{}")
    assert trigger(watch)
