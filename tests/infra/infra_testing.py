"""Helpers of the infra tests: a synthesized stage and lookups that never hard-code logical ids."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import CfnResource, Stack
from constructs import IConstruct

from infra.app import StageStacks, build_app, synthesize
from infra.audit.assembly import Assembly, read_assembly
from stage import REPO_ROOT, Stage


@dataclass(frozen=True)
class Synth:
    """One synthesized stage: the stage, the construct objects, and the assembly on disk."""

    stage: Stage
    stacks: StageStacks
    directory: Path
    assembly: Assembly

    @property
    def network(self) -> Mapping[str, Any]:
        return self.assembly.stack(self.stage.stack_name("Network")).template

    @property
    def data(self) -> Mapping[str, Any]:
        return self.assembly.stack(self.stage.stack_name("Data")).template

    @property
    def ml(self) -> Mapping[str, Any]:
        return self.assembly.stack(self.stage.stack_name("ML")).template

    @property
    def serving(self) -> Mapping[str, Any]:
        return self.assembly.stack(self.stage.stack_name("Serving")).template

    def template_of(self, construct: IConstruct) -> Mapping[str, Any]:
        return self.assembly.stack(Stack.of(construct).stack_name).template

    def logical_id(self, construct: IConstruct) -> str:
        """The logical id of a construct's CloudFormation resource (never hard-coded in tests)."""
        resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
        assert isinstance(resource, CfnResource), f"{construct.node.path} has no CloudFormation resource"
        return Stack.of(resource).get_logical_id(resource)

    def resource(self, construct: IConstruct) -> Mapping[str, Any]:
        return self.template_of(construct)["Resources"][self.logical_id(construct)]

    def props(self, construct: IConstruct) -> Mapping[str, Any]:
        return self.resource(construct).get("Properties", {})


class Markers:
    """Text for CloudFormation values: literals stay, each distinct intrinsic becomes ``@@cfn<n>@@``."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def text(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self.text(p) for p in parts)
        key = json.dumps(value, sort_keys=True)
        return f"@@cfn{self._ids.setdefault(key, len(self._ids))}@@"


def resources(template: Mapping[str, Any], resource_type: str) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def arn_of(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def synth_stage(factory: pytest.TempPathFactory, name: str, destroy: bool) -> Synth:
    outdir = factory.mktemp(f"cdk-{name}{'-destroy' if destroy else ''}")
    app, stage, stacks = build_app(name, destroy_data=destroy, outdir=outdir)
    directory = synthesize(app)
    return Synth(stage=stage, stacks=stacks, directory=directory, assembly=read_assembly(directory))


@dataclass(frozen=True)
class CliAudit:
    """``rookery audit --stage dev -o <out>`` run once as a subprocess: what it printed and wrote."""

    done: subprocess.CompletedProcess[str]
    out: Path


def run_cli_audit(stage: str, out: Path) -> CliAudit:
    """``rookery audit --stage <stage> -o <out>`` as a subprocess, as a reviewer runs it."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("rookery")), "audit", "--stage", stage, "-o", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return CliAudit(done, out)
