"""Scheduling: independent steps run in parallel up to max_parallel job processes; DependsOn orders."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from local_testing import engine_for, put_jsonl, step_named

from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, LocalHome
from pipelines import contract
from rookery.demo.dataset import penguin_records
from stage import Stage

pytestmark = pytest.mark.slow


def _three_profiles(definition: dict[str, Any]) -> dict[str, Any]:
    """Profile, a twin writing elsewhere, and a third that DependsOn the first."""
    first = step_named(definition, "Profile")
    steps = [first]
    for name, depends in (("ProfileTwin", None), ("ProfileAfter", ["Profile"])):
        step = copy.deepcopy(first)
        step["Name"] = name
        for output in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
            output["S3Output"]["S3Uri"]["Std:Join"]["Values"][3] = name
        if depends:
            step["DependsOn"] = depends
        steps.append(step)
    return {**definition, "Steps": steps}


def _job_span(execution: Execution, name: str) -> tuple[str, str]:
    props = execution.step(name).properties
    return props["ProcessingStartTime"], props["ProcessingEndTime"]


@pytest.mark.parametrize("max_parallel", [1, 2])
def test_independent_steps_share_the_job_slots_and_depends_on_waits(
    max_parallel: int, dev_stage: Stage, dev_train_definition: dict[str, Any], tmp_home: LocalHome
) -> None:
    put_jsonl(tmp_home, "s3://rookery-dev-raw/penguins/ingest_date=2024-05-01/p", penguin_records())
    definition = _three_profiles(dev_train_definition)
    execution = engine_for(dev_stage, tmp_home, max_parallel=max_parallel).run(definition)
    assert execution.status == "Succeeded", execution.failure_reason
    first, twin, after = (_job_span(execution, n) for n in ("Profile", "ProfileTwin", "ProfileAfter"))
    assert after[0] >= first[1], "DependsOn: the third starts after the first ends"
    overlap = first[0] < twin[1] and twin[0] < first[1]
    assert overlap is (max_parallel == 2), (first, twin)
    outputs = {
        o["S3Output"]["S3Uri"]
        for n in ("Profile", "ProfileTwin")
        for o in execution.step(n).properties["ProcessingOutputConfig"]["Outputs"]
    }
    # Every output of each of the two steps, each its own folder.
    assert (
        len(outputs) == 2
        and all(u.endswith(f"/{contract.PROFILE_OUTPUT}") for u in outputs)
        and all(LocalS3(tmp_home).path(u).is_dir() for u in outputs)
    )
