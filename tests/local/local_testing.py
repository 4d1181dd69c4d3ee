"""Helpers for the local-engine tests (a uniquely named module: conftest.py is not importable).

Definitions are rendered by the real builder for test stages (small ``num_round``, few trials)
and cached in ``<repo>/.rookery/cache``, keyed by the settings and the pipeline code, so only the
first render of a session imports the SageMaker SDK.
"""

from __future__ import annotations

import copy
import json
import tarfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, ImageMap, LocalEngine, LocalHome
from pipelines import PipelineResources, PipelineSettings, render_definition_cached
from rookery.demo.synthetic import SYNTHETIC_SCHEMA
from stage import STAGES_DIR, Stage, parse_stage
from stage.paths import REPO_ROOT

RENDER_CACHE: Final = REPO_ROOT / ".rookery" / "cache"
SMALL_TRAINING: Final = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "num_round": 30,
    "max_depth": 4,
    "eta": 0.3,
    "early_stopping_rounds": 10,
}


def stage(
    name: str = "dev",
    *,
    dataset: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
) -> Stage:
    """The dev stage file with the given parts replaced, validated like a stage file, named ``name``."""
    raw = tomllib.loads((STAGES_DIR / "dev.toml").read_text(encoding="utf-8"))
    if dataset is not None:
        raw["dataset"] = dict(dataset)
    ml = raw.setdefault("ml", {})
    if hyperparameters is not None:
        ml.setdefault("training", {})["hyperparameters"] = dict(hyperparameters)
    if tuning is not None:
        ml["tuning"] = dict(tuning)
    return parse_stage(name, raw, source="test")


def synthetic_stage(**training: Any) -> Stage:
    return stage(
        "synth",
        dataset={k: v for k, v in SYNTHETIC_SCHEMA.items() if v is not None},
        hyperparameters=training or SMALL_TRAINING,
    )


def render(config: Stage, *, tune: bool) -> dict[str, Any]:
    settings = PipelineSettings.from_stage(config, PipelineResources.placeholders(config), tune=tune)
    return copy.deepcopy(render_definition_cached(settings, RENDER_CACHE))


def engine_for(config: Stage, home: LocalHome, **kwargs: Any) -> LocalEngine:
    return LocalEngine(home, ImageMap.project(PipelineResources.placeholders(config).image_uri), **kwargs)


def new_home(root: Path) -> LocalHome:
    """A fresh local home whose render cache is the shared one (CLI runs then hit it)."""
    root.mkdir(parents=True, exist_ok=True)
    RENDER_CACHE.mkdir(parents=True, exist_ok=True)
    (root / "cache").symlink_to(RENDER_CACHE, target_is_directory=True)
    return LocalHome(root)


def put_jsonl(home: LocalHome, uri: str, records: Sequence[Mapping[str, Any]]) -> Path:
    path = LocalS3(home).path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_json(home: LocalHome, uri: str) -> Any:
    return json.loads(LocalS3(home).path(uri).read_text(encoding="utf-8"))


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def model_metadata(home: LocalHome, model_uri: str) -> dict[str, Any]:
    """metadata.json inside a model.tar.gz in the local S3."""
    with tarfile.open(LocalS3(home).path(model_uri)) as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        return dict(json.loads(member.read()))


def rows_and_answers(home: LocalHome, execution: Execution) -> tuple[list[str], list[dict[str, Any]]]:
    """The test split's CSV rows (label first: 1 = positive class) and the batch transform's answers,
    over every Preprocess host's files (``test<suffix>.csv`` answered in ``test<suffix>.jsonl.out``)."""
    outputs = execution.step("Preprocess").properties["ProcessingOutputConfig"]["Outputs"]
    test_csv = next(o for o in outputs if o["OutputName"] == "test")["S3Output"]["S3Uri"]
    out = execution.step("BatchTransform").properties["TransformOutput"]["S3OutputPath"]
    rows: list[str] = []
    answers: list[dict[str, Any]] = []
    for csv in sorted(LocalS3(home).path(test_csv).glob("*.csv")):
        rows += lines(csv)
        answers += [json.loads(line) for line in lines(LocalS3(home).path(f"{out}/{csv.stem}.jsonl.out"))]
    return rows, answers


def auc_in_order(rows: Sequence[str], answers: Sequence[Mapping[str, Any]]) -> float:
    """ROC AUC of the answers' probabilities against the rows' labels, paired line by line.

    Equal to the evaluation's AUC only when the answers follow the test rows' order: swapping two
    answers of rows with different labels changes it. (Mann-Whitney, ties counted half.)
    """
    pairs = [(float(a["probability"]), row.startswith("1,")) for row, a in zip(rows, answers, strict=True)]
    positives = [p for p, positive in pairs if positive]
    negatives = [p for p, positive in pairs if not positive]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def step_named(definition: Mapping[str, Any], name: str) -> dict[str, Any]:
    from pipelines.definition import iter_steps  # noqa: PLC0415 - local helper

    for step in iter_steps(definition["Steps"]):
        if step["Name"] == name:
            return dict(step)
    raise KeyError(name)
