"""A render cache for callers that render on every run (``cdk synth``): same inputs, same JSON.

Importing the SageMaker SDK costs seconds, more than CDK spends synthesizing a small stack.
The definition is a pure function of the settings, rookery's pipeline code and the pinned SDK,
so a render is stored under a key made of exactly those; any change to one of them misses.
The caller chooses the folder (``.rookery/cache`` for synth); the builder itself stays pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from pipelines.settings import PipelineSettings

PACKAGE_DIR: Final = Path(__file__).resolve().parent
# Distributions whose code shapes the rendered JSON (pinned exactly in pyproject.toml).
SDK_DISTRIBUTIONS: Final = (
    "sagemaker",
    "sagemaker-core",
    "sagemaker-train",
    "sagemaker-serve",
    "sagemaker-mlops",
)


def cache_key(settings: PipelineSettings) -> str:
    """sha256 over the settings, every module of ``pipelines`` and the SDK versions."""
    digest = hashlib.sha256(settings.model_dump_json().encode())
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    for name in SDK_DISTRIBUTIONS:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    return digest.hexdigest()


def render_definition_cached(settings: PipelineSettings, cache_dir: Path) -> dict[str, Any]:
    """``render_definition(settings)``, from ``cache_dir`` when these exact inputs were rendered before."""
    path = cache_dir / f"pipeline-{cache_key(settings)[:40]}.json"
    try:
        cached: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return cached
    except (OSError, ValueError):  # missing or unreadable: render again
        pass
    from pipelines.builder import render_definition  # noqa: PLC0415 - the SDK import, only on a miss

    definition = render_definition(settings)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: a concurrent synth never reads half a file.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=cache_dir, delete=False, suffix=".tmp"
    ) as tmp:
        json.dump(definition, tmp)
    os.replace(tmp.name, path)
    return definition
