"""Controls T1-T6 deployed: the ``AWS::SageMaker::Pipeline`` whose body is the one rendered definition.

``render_for_stage`` renders the stage's definition with ``PipelineResources.placeholders(stage)``
(through the render cache, so a synth imports the SageMaker SDK only when the inputs changed).
``TrainingPipeline`` cuts the JSON text at every placeholder and joins it again with the stack's
tokens in their place (``Fn::Join``): the body CloudFormation deploys is the builder's output with
the real role, buckets, image, subnets, security groups and keys, and nothing else changed. The
test reverses the substitution and compares with ``render_definition``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.registry import ModelRegistry
from pipelines import (
    PipelineResources,
    PipelineSettings,
    SettingsError,
    render_definition_cached,
    split_on_placeholders,
)
from pipelines.definition import iter_steps, walk
from stage import ConfigError, Stage
from stage.names import PRIVATE_ECR_IMAGE


@dataclass(frozen=True)
class RenderedPipeline:
    """The stage's definition rendered with placeholder resources, and the settings it came from."""

    settings: PipelineSettings
    definition: Mapping[str, Any]

    @property
    def placeholders(self) -> PipelineResources:
        return self.settings.resources

    @property
    def has_tuning(self) -> bool:
        return any(step.get("Type") == "Tuning" for step in iter_steps(self.definition.get("Steps", [])))

    def external_images(self) -> tuple[str, ...]:
        """ECR image URIs the definition names other than the project image (e.g. built-in XGBoost)."""
        texts = (text for _, text in walk(self.definition) if isinstance(text, str))
        found = {text for text in texts if PRIVATE_ECR_IMAGE.match(text)}
        return tuple(sorted(found - {self.placeholders.image_uri}))


def render_for_stage(stage: Stage, *, cache_dir: Path) -> RenderedPipeline:
    """The stage's pipeline (train or tune as the stage says) with placeholder resources.

    Invalid pipeline settings surface as ``ConfigError`` (one line at synth, no traceback).
    """
    try:
        settings = PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage))
    except SettingsError as error:
        raise ConfigError(str(error)) from None
    return RenderedPipeline(settings=settings, definition=render_definition_cached(settings, cache_dir))


def definition_body(rendered: RenderedPipeline, tokens: Mapping[str, str]) -> str:
    """The definition's JSON text with each placeholder replaced by ``tokens[field]`` (an ``Fn::Join``)."""
    fields = set(rendered.placeholders.values())
    missing, extra = sorted(fields - set(tokens)), sorted(set(tokens) - fields)
    if missing or extra:
        raise ValueError(
            f"pipeline resources without a value: {missing}; values for unknown resources: {extra}. "
            "Give one value per field of PipelineResources.values() (subnet_ids[0], ...)"
        )
    text = json.dumps(rendered.definition, separators=(",", ":"))
    pieces = split_on_placeholders(text, rendered.placeholders)
    return Fn.join("", [piece if isinstance(piece, str) else tokens[piece[0]] for piece in pieces])


class TrainingPipeline(Construct):
    """The ``AWS::SageMaker::Pipeline``. Exposes ``pipeline``, ``pipeline_name``, ``pipeline_arn``,
    ``rendered`` and ``tokens`` (the value that replaced each placeholder field)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        rendered: RenderedPipeline,
        tokens: Mapping[str, str],
        role: iam.IRole,
        registry: ModelRegistry,
    ) -> None:
        super().__init__(scope, construct_id)
        placeholders = rendered.placeholders
        fixed = {"pipeline_name": placeholders.pipeline_name, "model_package_group_name": registry.group_name}
        if placeholders.model_package_group_name != registry.group_name:
            raise ValueError(
                f"the definition registers into {placeholders.model_package_group_name!r} but the registry "
                f"group is {registry.group_name!r}; both must come from model_package_group_name(stage)"
            )
        self.tokens: Mapping[str, str] = MappingProxyType({**tokens, **fixed})
        self.rendered = rendered
        self.pipeline_name = placeholders.pipeline_name
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_display_name=self.pipeline_name,
            pipeline_description=(
                f"{stage.qualifier}: preprocess, {'tune' if rendered.has_tuning else 'train'}, evaluate, "
                "gate, register, batch transform (rendered by pipelines.build_pipeline)"
            ),
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": definition_body(rendered, self.tokens)},
        )
        # Jobs start only with the role's permissions in place (the role itself is referenced
        # already); versions need their group.
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.pipeline.node.add_dependency(policy)
        self.pipeline.node.add_dependency(registry.group)
        self.pipeline_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=self.pipeline_name
        )
