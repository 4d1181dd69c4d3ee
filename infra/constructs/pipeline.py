"""Controls T1-T6 deployed: the ``AWS::SageMaker::Pipeline`` whose body is the one rendered definition.

The stack renders the stage's definition with ``PipelineResources.placeholders(stage)``
(``infra.stacks.stage_props.render_for_stage``) and hands it over as ``PipelineProps.rendered``.
``TrainingPipeline`` cuts the JSON text at every placeholder and joins it again with the stack's
values in their place (``Fn::Join``), one ``DeployedResources`` field for each ``PipelineResources``
field: the body CloudFormation deploys is the builder's output with the real role, buckets, image,
subnets, security groups and keys, and nothing else changed. The test reverses the substitution and
compares with ``render_definition``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, get_type_hints

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.props import PropsError, check_qualifier
from infra.constructs.registry import ModelRegistry
from pipelines import PipelineResources, PipelineSettings, split_on_placeholders
from pipelines.definition import iter_steps, walk
from pipelines.settings import resource_values
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

    def external_image_accounts(self) -> tuple[str, ...]:
        """The accounts whose registries hold ``external_images()`` (control E1)."""
        matches = (PRIVATE_ECR_IMAGE.match(image) for image in self.external_images())
        return tuple(sorted({m["account"] for m in matches if m is not None}))


@dataclass(frozen=True, kw_only=True)
class DeployedResources:
    """What the stack puts where the rendered definition has a placeholder: one field for each
    ``PipelineResources`` field, of the same name and shape (a missing or misspelt field is a type
    error). Values are mostly CloudFormation tokens, so only ``PipelineResources`` checks formats."""

    role_arn: str
    artifacts_bucket: str  # bucket names, not ARNs
    raw_bucket: str
    image_uri: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    volume_kms_key_arn: str
    output_kms_key_arn: str
    model_package_group_name: str  # the registry's group: versions are registered there
    pipeline_name: str  # the pipeline resource's own name

    def values(self) -> dict[str, str]:
        """Every value by the key ``split_on_placeholders`` marks (``subnet_ids[0]`` ...)."""
        return resource_values({f.name: getattr(self, f.name) for f in fields(self)})


def check_mirrors_pipeline_resources(resources_type: type = DeployedResources) -> None:
    """``resources_type`` has exactly the fields of ``PipelineResources``, with the same types."""
    mine = get_type_hints(resources_type)
    theirs = {name: field.annotation for name, field in PipelineResources.model_fields.items()}
    if mine != theirs:
        differ = sorted(n for n in mine.keys() | theirs.keys() if mine.get(n) != theirs.get(n))
        raise TypeError(
            f"{resources_type.__name__} and pipelines.settings.PipelineResources differ in {differ}; give "
            f"{resources_type.__name__} one field per PipelineResources field, of the same name and type"
        )


check_mirrors_pipeline_resources()


@dataclass(frozen=True, kw_only=True)
class PipelineProps:
    qualifier: str
    rendered: RenderedPipeline  # the stage's definition with placeholder resources

    def __post_init__(self) -> None:
        check_qualifier(self)


def definition_body(rendered: RenderedPipeline, resources: DeployedResources) -> str:
    """The definition's JSON text with each placeholder replaced by the stack's value (an ``Fn::Join``)."""
    placeholders = rendered.placeholders
    for name in ("subnet_ids", "security_group_ids"):
        rendered_with, given = len(getattr(placeholders, name)), len(getattr(resources, name))
        if given != rendered_with:
            raise PropsError(
                resources,
                name,
                f"{given} values but the definition was rendered with {rendered_with}; render it with "
                f"as many {name} as the stack passes",
            )
    values = resources.values()
    text = json.dumps(rendered.definition, separators=(",", ":"))
    pieces = split_on_placeholders(text, placeholders)
    return Fn.join("", [piece if isinstance(piece, str) else values[piece[0]] for piece in pieces])


class TrainingPipeline(Construct):
    """The ``AWS::SageMaker::Pipeline``. Exposes ``pipeline``, ``pipeline_name``, ``pipeline_arn``,
    ``rendered``, ``resources`` and ``tokens`` (the value that replaced each placeholder, by
    ``PipelineResources.values()`` key)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: PipelineProps,
        resources: DeployedResources,
        role: iam.IRole,
        registry: ModelRegistry,
    ) -> None:
        super().__init__(scope, construct_id)
        rendered = props.rendered
        placeholders = rendered.placeholders
        # Names are rendered, not substituted: the execution role and the trigger are scoped to them.
        for name in ("pipeline_name", "model_package_group_name"):
            rendered_name = getattr(placeholders, name)
            if getattr(resources, name) != rendered_name:
                raise PropsError(
                    resources, name, f"the definition was rendered with {rendered_name!r}; pass that name"
                )
        if placeholders.model_package_group_name != registry.group_name:
            raise PropsError(
                props,
                "rendered",
                f"the definition registers into {placeholders.model_package_group_name!r} but the registry "
                f"group is {registry.group_name!r}; both must come from model_package_group_name(stage)",
            )
        self.resources = resources
        self.tokens: Mapping[str, str] = MappingProxyType(resources.values())
        self.rendered = rendered
        self.pipeline_name = placeholders.pipeline_name
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_display_name=self.pipeline_name,
            pipeline_description=(
                f"{props.qualifier}: preprocess, {'tune' if rendered.has_tuning else 'train'}, evaluate, "
                "gate, register, batch transform (rendered by pipelines.build_pipeline)"
            ),
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": definition_body(rendered, resources)},
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
