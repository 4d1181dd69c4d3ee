"""The ``AWS::SageMaker::Pipeline`` of every stage embeds exactly the builder's definition (T1-T6 deployed).

The synthesized ``PipelineDefinitionBody`` is compared with ``render_definition`` of the same
settings (the real builder, not the synth's render cache), after the test substitutes the stack's
tokens for the placeholders itself, independently of ``split_on_placeholders``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
from infra_testing import Markers, Synth, arn_of, resources

from infra.audit.rules import ROOKERY_RULES
from pipelines import validate_definition
from pipelines.settings import PipelineResources, PipelineSettings
from pipelines.validate import expected_for
from stage.names import model_package_group_name, pipeline_name

pytestmark = pytest.mark.xdist_group("infra-synth")


@functools.cache
def builder_render(settings_json: str) -> str:
    """``render_definition`` of these settings, once per worker (the SageMaker SDK import is slow)."""
    from pipelines import render_definition  # noqa: PLC0415

    return json.dumps(render_definition(PipelineSettings.model_validate_json(settings_json)))


def _pipeline(synth: Synth) -> Mapping[str, Any]:
    [pipeline] = resources(synth.ml, "AWS::SageMaker::Pipeline").values()
    return pipeline


def _embedded_and_expected(synth: Synth) -> tuple[Any, Any]:
    ml = synth.stacks.ml
    rendered = ml.pipeline.rendered
    markers = Markers()
    body = _pipeline(synth)["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    embedded = json.loads(markers.text(body))
    expected_text = builder_render(rendered.settings.model_dump_json())
    values = rendered.placeholders.values()
    # Longest first: no placeholder is cut short by another that starts the same way.
    for field in sorted(values, key=lambda f: -len(values[f])):
        token = markers.text(ml.resolve(ml.pipeline.tokens[field]))
        expected_text = expected_text.replace(values[field], token)
    return embedded, json.loads(expected_text)


def test_the_embedded_definition_is_the_builders_output_with_the_stacks_resources(synth: Synth) -> None:
    embedded, expected = _embedded_and_expected(synth)
    assert embedded == expected


def test_the_stage_decides_train_or_tune(synth: Synth) -> None:
    embedded, _ = _embedded_and_expected(synth)
    kinds = [step["Type"] for step in embedded["Steps"]]
    training = "Tuning" if synth.stage.ml.tuning.enabled else "Training"
    assert kinds == ["Processing", "Processing", "Processing", training, "Processing", "Condition"]


def test_every_placeholder_was_replaced_by_a_resource_of_the_stack(synth: Synth) -> None:
    ml = synth.stacks.ml
    text = Markers().text(_pipeline(synth)["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    placeholders = PipelineResources.placeholders(synth.stage)
    for field, value in placeholders.values().items():
        if field in ("artifacts_bucket", "raw_bucket"):
            # The real names extend the placeholders (<qualifier>-<purpose>-<account>-<region>).
            assert f"s3://{value}/" not in text and f's3://{value}"' not in text, field
        elif field not in ("pipeline_name", "model_package_group_name"):
            assert value not in text, field
    tokens = {field: ml.resolve(token) for field, token in ml.pipeline.tokens.items()}
    assert tokens["role_arn"] == arn_of(synth.logical_id(ml.execution.role))
    assert tokens["pipeline_name"] == pipeline_name(synth.stage)
    assert tokens["model_package_group_name"] == model_package_group_name(synth.stage)
    assert "container-assets" in json.dumps(tokens["image_uri"])  # the project image asset's repository
    assert ml.image.asset.asset_hash in json.dumps(tokens["image_uri"])
    artifacts_key = ml.resolve(synth.stacks.data.keys.artifacts.key_arn)
    assert tokens["volume_kms_key_arn"] == tokens["output_kms_key_arn"] == artifacts_key
    subnets = [tokens[f"subnet_ids[{i}]"] for i in range(len(placeholders.subnet_ids))]
    network = synth.stacks.network.network
    assert subnets == [ml.resolve(s.subnet_id) for s in network.vpc.isolated_subnets]
    assert tokens["security_group_ids[0]"] == ml.resolve(
        network.workload_security_groups["sagemaker"].security_group_id
    )


def test_the_pipeline_runs_as_the_execution_role_after_its_policy_and_group_exist(synth: Synth) -> None:
    ml = synth.stacks.ml
    pipeline = _pipeline(synth)
    assert pipeline["Properties"]["PipelineName"] == pipeline_name(synth.stage)
    assert pipeline["Properties"]["RoleArn"] == arn_of(synth.logical_id(ml.execution.role))
    policy = ml.execution.role.node.find_child("DefaultPolicy")
    assert set(pipeline["DependsOn"]) == {synth.logical_id(policy), synth.logical_id(ml.registry.group)}


def test_the_builders_definition_passes_every_check_of_rookery_pipeline_validate(synth: Synth) -> None:
    rendered = synth.stacks.ml.pipeline.rendered
    definition = json.loads(builder_render(rendered.settings.model_dump_json()))
    findings = validate_definition(definition, expected_for(rendered.placeholders))
    assert [f for f in findings if f.blocking] == []


def test_the_perimeter_rules_read_the_embedded_definition_and_pass(synth: Synth) -> None:
    perimeter = [r for r in ROOKERY_RULES.rules if re.fullmatch(r"Rookery-T[1-6]", r.id)]
    assert [r.control for r in perimeter] == ["T1", "T2", "T3", "T4", "T5", "T6"]
    assert all(list(rule.check(synth.ml)) == [] for rule in perimeter)


@pytest.mark.parametrize(
    ("flag", "control"),
    [("EnableNetworkIsolation", "Rookery-T2"), ("EnableInterContainerTrafficEncryption", "Rookery-T3")],
)
def test_the_perimeter_rules_catch_a_flag_dropped_from_the_deployed_body(
    synth: Synth, flag: str, control: str
) -> None:
    template = json.loads(json.dumps(synth.ml))
    pipeline = next(iter(resources(template, "AWS::SageMaker::Pipeline").values()))
    parts = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Join"][1]
    # The training (or tuning) job is where the SDK's tuner drops these flags.
    index = max(i for i, p in enumerate(parts) if isinstance(p, str) and f'"{flag}":true' in p)
    parts[index] = parts[index].replace(f'"{flag}":true', f'"{flag}":false')
    found = [f for f in ROOKERY_RULES.evaluate(template) if f.rule_id.startswith("Rookery-T")]
    assert [f.rule_id for f in found] == [control]
    assert flag in found[0].message


def test_the_registry_group_is_named_for_the_stage_and_retained_unless_destruction_is_allowed(
    any_synth: Synth,
) -> None:
    group = any_synth.resource(any_synth.stacks.ml.registry.group)
    assert group["Properties"]["ModelPackageGroupName"] == model_package_group_name(any_synth.stage)
    policy = "Delete" if any_synth.stage.removal_destroys_data else "Retain"
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (policy, policy)


def test_the_image_is_a_docker_asset_of_the_staged_context_synthesized_without_docker(synth: Synth) -> None:
    manifest = json.loads((synth.directory / f"{synth.stage.stack_name('ML')}.assets.json").read_text())
    [(asset_hash, image)] = manifest["dockerImages"].items()
    assert asset_hash == synth.stacks.ml.image.asset.asset_hash
    assert image["source"]["platform"] == "linux/amd64"
    staged = synth.directory / image["source"]["directory"]
    assert (staged / "Dockerfile").is_file() and (staged / "program").is_dir()
    # The image ships rookery_contracts inside /opt/program, next to its own package.
    assert (staged / "program" / "rookery_contracts" / "schema.py").is_file()
    # infra.image_context stages source files only: no bytecode or docs in the context (or the hash).
    assert not list(staged.rglob("__pycache__")) and not (staged / "README.md").exists()
    [destination] = image["destinations"].values()
    assert destination["repositoryName"].startswith("cdk-hnb659fds-container-assets-")
