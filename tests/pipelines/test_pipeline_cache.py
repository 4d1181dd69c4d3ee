"""The render cache: a hit needs no SDK, any change of input misses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pipeline_testing import RENDER_GROUP

import pipelines.builder
from pipelines import PipelineSettings, cache, render_definition_cached

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)


def _refuse(settings: PipelineSettings) -> dict[str, Any]:
    raise AssertionError("rendered although the cache holds these inputs")


def test_a_hit_returns_the_render_without_rendering(
    tmp_path: Path,
    train_settings: PipelineSettings,
    train_definition: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert render_definition_cached(train_settings, tmp_path) == train_definition  # miss: renders, stores
    (stored,) = tmp_path.glob("pipeline-*.json")
    monkeypatch.setattr(pipelines.builder, "render_definition", _refuse)
    assert render_definition_cached(train_settings, tmp_path) == train_definition
    stored.write_text("{not json", encoding="utf-8")  # a damaged entry is rendered again
    monkeypatch.undo()
    assert render_definition_cached(train_settings, tmp_path) == train_definition


def test_other_settings_miss(
    tmp_path: Path, train_settings: PipelineSettings, tune_settings: PipelineSettings
) -> None:
    assert cache.cache_key(train_settings) != cache.cache_key(tune_settings)
    other = train_settings.model_copy(
        update={"resources": train_settings.resources.model_copy(update={"raw_bucket": "b-raw"})}
    )
    assert cache.cache_key(other) != cache.cache_key(train_settings)


def test_a_change_to_the_pipeline_code_misses(
    tmp_path: Path, train_settings: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "pipelines"
    shutil.copytree(cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE_DIR", copy)
    before = cache.cache_key(train_settings)
    fixes = copy / "fixes.py"
    fixes.write_text(fixes.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert cache.cache_key(train_settings) != before
