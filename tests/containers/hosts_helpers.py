"""Several training hosts on this machine: one /opt/ml sandbox and resourceconfig.json per host, the
train channel sharded by object as ``ShardedByS3Key`` does, validation replicated, the tracker on
127.0.0.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from image_helpers import Sandbox, free_port

SHARDED = ("train",)


def shard_of(objects: Sequence[Path], host: int, hosts: int) -> list[Path]:
    """The objects host ``host`` (0-based) of ``hosts`` receives: every hosts-th, in key order."""
    return sorted(objects)[host::hosts]


@dataclass
class Hosts:
    """``count`` training hosts algo-1..algo-N under ``root``."""

    root: Path
    count: int
    timeout: int = 60

    def __post_init__(self) -> None:
        self.names = [f"algo-{i + 1}" for i in range(self.count)]
        self.sandboxes = [Sandbox(self.root / name) for name in self.names]
        self.port = 0

    def training_job(self, hyperparameters: Mapping[str, Any], channels: Mapping[str, Path]) -> None:
        for index, (name, job) in enumerate(zip(self.names, self.sandboxes, strict=True)):
            job.training_job(hyperparameters, {})
            config = job.base / "input" / "config"
            declared = {
                channel: {
                    "ContentType": "application/json" if channel == "preprocessor" else "text/csv",
                    "TrainingInputMode": "File",
                    "S3DistributionType": "ShardedByS3Key" if channel in SHARDED else "FullyReplicated",
                }
                for channel in channels
            }
            (config / "inputdataconfig.json").write_text(json.dumps(declared))
            (config / "resourceconfig.json").write_text(
                json.dumps({"current_host": name, "hosts": self.names, "network_interface_name": "eth0"})
            )
            for channel, source in channels.items():
                files = sorted(source.iterdir())
                if channel in SHARDED:
                    files = shard_of(files, index, self.count)
                target = job.base / "input" / "data" / channel
                target.mkdir(parents=True, exist_ok=True)
                for path in files:
                    (target / path.name).write_bytes(path.read_bytes())

    def env(self) -> dict[str, str]:
        return {
            "ROOKERY_COLLECTIVE_HOST": "127.0.0.1",
            "ROOKERY_COLLECTIVE_PORT": str(self.port),
            "ROOKERY_COLLECTIVE_TIMEOUT": str(self.timeout),
        }

    def start(self, only: Sequence[int] | None = None) -> list[subprocess.Popen[str]]:
        chosen = range(self.count) if only is None else only
        self.port = free_port()  # a restarted job gets new instances, and a new tracker
        return [self.sandboxes[i].start("train", **self.env()) for i in chosen]

    def run(self, limit: float = 300) -> list[tuple[int, str]]:
        """Every host to its end: (exit code, log) per host."""
        processes = self.start()
        return [(p.wait(timeout=limit), p.stdout.read() if p.stdout else "") for p in processes]

    @property
    def model(self) -> Path:
        return self.sandboxes[0].base / "model"
