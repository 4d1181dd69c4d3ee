"""Rookery's corrections to what SDK v3 renders: verify the output, do not trust the input.

``HyperparameterTuner._build_training_job_definition`` (sagemaker-train 1.27) copies the
trainer's VPC, spot and checkpoint settings into the tuning job's training definition but
drops ``EnableNetworkIsolation``, ``EnableInterContainerTrafficEncryption`` and the volume
KMS key (``ResourceConfig.VolumeKmsKeyId``). Each trial would then run with network access,
unencrypted inter-node traffic and an AWS-managed volume key (controls T2-T4). ``apply``
restores them from the same settings the Train step uses; the tests fail if any is missing.

Pure functions over the definition dict.
"""

from __future__ import annotations

import copy
from typing import Any

from pipelines import parameters as names
from pipelines.contract import SHARDED, SHARDED_CHANNEL
from pipelines.definition import iter_steps
from pipelines.settings import PipelineSettings
from pipelines.steps import INTER_CONTAINER_ENCRYPTION, NETWORK_ISOLATION


def restore_tuning_perimeter(definition: dict[str, Any], settings: PipelineSettings) -> dict[str, Any]:
    """Put the flags the tuner drops back into every tuning step's training job definition."""
    fixed = copy.deepcopy(definition)
    for step in iter_steps(fixed.get("Steps", [])):
        if step.get("Type") != "Tuning":
            continue
        job = step["Arguments"]["TrainingJobDefinition"]
        job["EnableNetworkIsolation"] = NETWORK_ISOLATION
        job["EnableInterContainerTrafficEncryption"] = INTER_CONTAINER_ENCRYPTION
        job.setdefault("ResourceConfig", {})["VolumeKmsKeyId"] = settings.resources.volume_kms_key_arn
    return fixed


def wire_training_max_runtime(definition: dict[str, Any]) -> dict[str, Any]:
    """``StoppingCondition`` (sagemaker-core) types ``MaxRuntimeInSeconds`` as int and the tuner
    re-validates it; the builder renders the default and this wires the parameter in."""
    fixed = copy.deepcopy(definition)
    runtime = {"Get": f"Parameters.{names.TRAINING_MAX_RUNTIME}"}
    for step in iter_steps(fixed.get("Steps", [])):
        if step.get("Type") == "Training":
            step["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] = runtime
        elif step.get("Type") == "Tuning":
            step["Arguments"]["TrainingJobDefinition"]["StoppingCondition"]["MaxRuntimeInSeconds"] = runtime
    return fixed


def wire_transform_instance_count(definition: dict[str, Any]) -> dict[str, Any]:
    """``TransformResources`` (sagemaker-core) rejects a parameter as ``InstanceCount``; the
    builder renders the default and this puts the ``TransformInstanceCount`` parameter back."""
    fixed = copy.deepcopy(definition)
    for step in iter_steps(fixed.get("Steps", [])):
        if step.get("Type") == "Transform":
            step["Arguments"]["TransformResources"]["InstanceCount"] = {
                "Get": f"Parameters.{names.TRANSFORM_INSTANCE_COUNT}"
            }
    return fixed


def shard_training_data(definition: dict[str, Any]) -> dict[str, Any]:
    """Each training instance reads its share of the train channel's objects (``ShardedByS3Key``; with
    one instance that share is all of them); ``InputData`` renders every channel fully replicated."""
    fixed = copy.deepcopy(definition)
    for step in iter_steps(fixed.get("Steps", [])):
        if step.get("Type") not in ("Training", "Tuning"):
            continue
        job = step["Arguments"].get("TrainingJobDefinition", step["Arguments"])
        for channel in job.get("InputDataConfig", []):
            if channel["ChannelName"] == SHARDED_CHANNEL:
                channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] = SHARDED
    return fixed


def apply(definition: dict[str, Any], settings: PipelineSettings) -> dict[str, Any]:
    """Every fix, in order; the result is what CDK embeds, the CLI upserts and the local engine runs."""
    fixed = restore_tuning_perimeter(definition, settings)
    fixed = wire_training_max_runtime(fixed)
    fixed = wire_transform_instance_count(fixed)
    if not settings.builtin_image:  # the built-in algorithm's data layout is its own
        fixed = shard_training_data(fixed)
    return fixed
