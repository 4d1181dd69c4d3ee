"""Training checkpoints for spot safety: save every N rounds and on SIGTERM, resume from the newest.

A checkpoint is the booster after ``rounds`` rounds plus a small JSON marker written last, so a
half-written checkpoint is never picked. Each marker records a fingerprint of the hyperparameters
and the training data: a job started with different settings or data (for example a new pipeline
execution that reuses the checkpoint location) starts fresh instead of continuing someone else's model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "rookery-checkpoint-"
FORMAT = "rookery-checkpoint/1"


def fingerprint(settings: str, files: Iterable[Path]) -> str:
    """sha256 over the settings fingerprint and the bytes of every input file (in the given order)."""
    digest = hashlib.sha256(settings.encode())
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    model: Path
    rounds: int


class CheckpointStore:
    def __init__(self, folder: Path, fingerprint: str, keep: int = 2) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.keep = keep

    def _markers(self) -> list[tuple[int, Path]]:
        found = []
        for marker in self.folder.glob(f"{PREFIX}*.json"):
            try:
                found.append((int(marker.stem.removeprefix(PREFIX)), marker))
            except ValueError:
                continue
        return sorted(found, reverse=True)

    def candidates(self) -> tuple[list[Checkpoint], list[str]]:
        """Checkpoints of this job, newest first, and why the others were passed over."""
        usable, skipped = [], []
        for rounds, marker in self._markers():
            try:
                meta: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                skipped.append(f"{marker.name}: unreadable marker")
                continue
            model = marker.with_suffix(".ubj")
            if meta.get("format") != FORMAT or meta.get("rounds") != rounds or not model.is_file():
                skipped.append(f"{marker.name}: incomplete checkpoint")
            elif meta.get("fingerprint") != self.fingerprint:
                skipped.append(f"{marker.name}: written for other hyperparameters or data")
            else:
                usable.append(Checkpoint(model, rounds))
        return usable, skipped

    def save(self, model_bytes: bytes | bytearray, rounds: int) -> Path:
        """Write atomically (temp file + rename, marker last), then keep only the newest few."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{PREFIX}{rounds:07d}"
        model = self.folder / f"{stem}.ubj"
        marker = self.folder / f"{stem}.json"
        _atomic_write(model, bytes(model_bytes))
        meta = {"format": FORMAT, "rounds": rounds, "fingerprint": self.fingerprint}
        _atomic_write(marker, json.dumps(meta).encode())
        for _, old in self._markers()[self.keep :]:
            old.unlink(missing_ok=True)
            old.with_suffix(".ubj").unlink(missing_ok=True)
        return model


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
