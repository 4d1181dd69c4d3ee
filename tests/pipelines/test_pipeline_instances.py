"""Several instances per job: the train channel is sharded by object, Preprocess writes one training
file per training instance, Evaluate stays on one instance, and a multi-instance stage's definition
passes the perimeter check and the API shapes (inter-container traffic encryption included)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pipeline_testing import RENDER_GROUP, render

from pipelines import PipelineResources, PipelineSettings, contract, steps, validate_definition
from pipelines.definition import iter_steps, steps_by_name
from pipelines.parameters import TRAINING_INSTANCE_COUNT
from stage import STAGES_DIR, parse_stage

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)


def _jobs(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found = [s["Arguments"] for s in iter_steps(definition["Steps"]) if s["Type"] == "Training"]
    found += [
        s["Arguments"]["TrainingJobDefinition"]
        for s in iter_steps(definition["Steps"])
        if s["Type"] == "Tuning"
    ]
    return found


def test_train_is_sharded_by_object_and_validation_replicated(definition: dict[str, Any]) -> None:
    [job] = _jobs(definition)
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in job["InputDataConfig"]
    }
    assert distribution == {
        "train": "ShardedByS3Key",
        "validation": "FullyReplicated",
        contract.PREPROCESSOR_CHANNEL: "FullyReplicated",
    }
    assert job["ResourceConfig"]["InstanceCount"] == {"Get": f"Parameters.{TRAINING_INSTANCE_COUNT}"}
    assert job["EnableInterContainerTrafficEncryption"] is True and job["EnableNetworkIsolation"] is True


def test_preprocess_writes_a_training_file_per_training_instance(definition: dict[str, Any]) -> None:
    by_name = steps_by_name(definition)
    arguments = by_name[steps.PREPROCESS]["Arguments"]["AppSpecification"]["ContainerArguments"]
    at = arguments.index("--train-files")
    assert arguments[at + 1] == {
        "Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{TRAINING_INSTANCE_COUNT}"}]}
    }
    evaluate = by_name[steps.EVALUATE]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert evaluate["InstanceCount"] == 1, "test metrics and the threshold need the whole test split"
    baseline = by_name[steps.BASELINE]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert baseline["InstanceCount"] == 1, "the baseline profiles the whole training split"


@pytest.mark.parametrize("tune", [False, True])
def test_a_multi_instance_stage_passes_the_perimeter_and_the_api_shapes(tune: bool) -> None:
    raw = tomllib.loads((STAGES_DIR / "dev.toml").read_text(encoding="utf-8"))
    raw.setdefault("ml", {})["processing_instance_count"] = 2
    raw["ml"].setdefault("training", {})["instance_count"] = 3
    stage = parse_stage("dev", raw, source="test")
    resources = PipelineResources.placeholders(stage)
    definition = render(PipelineSettings.from_stage(stage, resources, tune=tune))
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults[TRAINING_INSTANCE_COUNT] == 3 and defaults["ProcessingInstanceCount"] == 2
    assert validate_definition(definition) == []
