"""The SageMaker pipeline as code: one pure builder, its perimeter check, and the helpers around it.

``build_pipeline(settings)`` returns the SDK v3 pipeline; ``render_definition(settings)`` the
JSON-ready definition after rookery's fixes, which CDK embeds, the CLI upserts and the local
engine runs. ``validate_definition`` checks any definition for controls T1-T6 (``docs/controls.md``),
the API shapes and what the definition reader (``pipelines.reading``) finds. The SageMaker SDK
(slow to import) is imported on first use of the builder, not with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.cache import render_definition_cached
from pipelines.placeholders import placeholder_locations, split_on_placeholders
from pipelines.settings import PipelineResources, PipelineSettings, SettingsError
from pipelines.validate import validate_definition

if TYPE_CHECKING:
    from pipelines.builder import build_pipeline, render_definition, render_json

_BUILDER = ("build_pipeline", "render_definition", "render_json")

__all__ = [
    "PipelineResources",
    "PipelineSettings",
    "SettingsError",
    "build_pipeline",
    "placeholder_locations",
    "render_definition",
    "render_definition_cached",
    "render_json",
    "split_on_placeholders",
    "validate_definition",
]


def __getattr__(name: str) -> Any:
    if name in _BUILDER:
        from pipelines import builder  # noqa: PLC0415 - imports the SDK: only when a build is asked for

        return getattr(builder, name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
