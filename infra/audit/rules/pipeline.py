"""rookery's pipeline rules (T1-T6): the perimeter of every job in the embedded SageMaker pipeline definition.

No scanner reads the ``PipelineDefinitionBody`` of an ``AWS::SageMaker::Pipeline``; these rules
parse it and run the perimeter check of ``rookery pipeline validate`` (``pipelines``) on it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.template import Template, props, resources, target

# Stand-ins for pseudo parameters while reading an embedded pipeline definition: an image URI
# written with Fn::Sub still reads as a private ECR URI, and every other reference as a non-empty value.
_PSEUDO: Final = {
    "AWS::AccountId": "000000000000",
    "AWS::Region": "us-east-1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::Partition": "aws",
}
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}!]+)\}")


def _stand_in(value: Any) -> str:
    name = target(value) or next(iter(value), "value")
    return "cfn-" + re.sub(r"[^A-Za-z0-9]", "", str(name))


def resolve_text(value: Any) -> str:
    """A CloudFormation string (``Fn::Join``, ``Fn::Sub``, references) as text, references as stand-ins."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(resolve_text(part) for part in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return resolve_text(variables[name])
                return _PSEUDO.get(name, "cfn-" + re.sub(r"[^A-Za-z0-9]", "", name))

            return _SUB_VARIABLE.sub(substitute, str(text))
        if value.get("Ref") in _PSEUDO:
            return _PSEUDO[value["Ref"]]
        return _stand_in(value)
    return str(value)


@functools.lru_cache(maxsize=16)
def _definition_findings(text: str) -> tuple[tuple[str, str], ...]:
    """(control, message) of every blocking perimeter finding (T1-T6) in a definition's JSON text.

    The API-shape checks of ``rookery pipeline validate`` need concrete values, which an embedded
    definition has only after deployment; the tests run them on the builder's output, which the
    embedded body equals apart from the substituted resources.
    """
    from pipelines import validate_definition  # noqa: PLC0415 - botocore's model: only when a pipeline exists

    try:
        definition = json.loads(text)
    except ValueError as exc:
        return (("T1", f"the PipelineDefinitionBody is not JSON ({exc}); no job in it can be verified"),)
    if not isinstance(definition, Mapping) or not isinstance(definition.get("Steps"), list):
        return (("T1", "the PipelineDefinitionBody has no Steps list; it is not a pipeline definition"),)
    return tuple(
        (f.control, f"step {f.step}, {f.field}: {f.message}")
        for f in validate_definition(definition)
        if f.blocking and f.control.startswith("T")
    )


def _pipeline_bodies(template: Template) -> Iterator[tuple[str, str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::Pipeline"):
        definition = props(resource).get("PipelineDefinition") or {}
        body = definition.get("PipelineDefinitionBody")
        if body is None:
            yield logical_id, "T1", "the definition is not embedded (PipelineDefinitionBody): unaudited"
            continue
        for control, message in _definition_findings(resolve_text(body)):
            yield logical_id, control, message


def _perimeter_rule(control: str, title: str, fix: str) -> None:
    """Declare the rule of one perimeter control: the definition's blocking findings for ``control``."""

    @rule(id=f"Rookery-{control}", control=control, title=title, fix=fix)
    def check(template: Template) -> Iterator[tuple[str, str]]:
        for logical_id, found, message in _pipeline_bodies(template):
            if found == control:
                yield logical_id, message


_perimeter_rule("T1", "Pipeline jobs run in the stage's VPC", "set VpcConfig / NetworkConfig")
_perimeter_rule("T2", "Pipeline jobs and models are network-isolated", "set EnableNetworkIsolation to true")
_perimeter_rule(
    "T3", "Pipeline jobs encrypt inter-container traffic", "set EnableInterContainerTrafficEncryption"
)
_perimeter_rule(
    "T4", "Pipeline jobs use KMS keys for volumes and outputs", "set VolumeKmsKeyId and output KmsKeyId"
)
_perimeter_rule(
    "T5", "Spot training has a checkpoint URI and a bounded wait", "set CheckpointConfig and MaxWaitTime"
)
_perimeter_rule(
    "T6", "Pipeline images come from the project's private ECR repository", "use the project image asset"
)
