"""Compose the app: read the stage from context, build the stacks, register the audit packs, gate.

``app.py`` (the CDK entry point) calls ``main()``. Tests and ``rookery audit`` use
``build_app()`` and ``synthesize()``. Nothing below this module reads context or the environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator

from infra.audit.assembly import read_assembly
from infra.audit.gate import GateResult, evaluate
from infra.audit.plugin import RookeryChecks
from infra.audit.rules import ROOKERY_RULES, RulePack
from infra.constructs.data_lake import TrustedPrincipal
from infra.constructs.monitoring import monitoring_exception
from infra.constructs.sagemaker_role import execution_role_exception
from infra.constructs.serving_role import capture_exception
from infra.stacks.data import DataStack
from infra.stacks.ml import MlStack
from infra.stacks.network import NetworkStack
from infra.stacks.serving import ServingStack
from infra.stacks.stage_props import render_for_stage, stage_errors
from stage import ConfigError, Stage, load_stage
from stage.names import (
    CAPTURE_PREFIX,
    monitoring_role_path,
    sagemaker_role_path,
    serving_role_path,
    stage_tags,
)
from stage.paths import CDK_CONTEXT_JSON, CDK_JSON, LOCAL_HOME

# Rendered pipeline definitions by input hash: a synth imports the SageMaker SDK only on a miss.
RENDER_CACHE: Final = LOCAL_HOME / "cache"
STAGE_CONTEXT: Final = "stage"
DESTROY_CONTEXT: Final = "destroy_data"


@dataclass(frozen=True)
class FoundationStacks:
    """The network and data stacks, which the stacks built on them take as inputs (``network.network.vpc``,
    ``data.lake``)."""

    network: NetworkStack
    data: DataStack


@dataclass(frozen=True)
class StageStacks(FoundationStacks):
    """Every stack of a stage: the foundation plus ``ml`` and, when the stage serves, ``serving``."""

    ml: MlStack
    serving: ServingStack | None = None


def stage_environment(stage: Stage) -> cdk.Environment | None:
    """A stage with an account is pinned to it (prod); one without is environment-agnostic (dev)."""
    return cdk.Environment(account=stage.account, region=stage.region) if stage.account else None


def build_stacks(
    app: cdk.App,
    stage: Stage,
    *,
    trusted_principals: Sequence[TrustedPrincipal] = (),
    render_cache: Path = RENDER_CACHE,
) -> StageStacks:
    env = stage_environment(stage)
    with stage_errors(stage):
        # The ECR endpoints admit the registries of the pipeline's external images (E1); the ML stack
        # renders the same definition again from the render cache.
        rendered = render_for_stage(stage, cache_dir=render_cache)
        network = NetworkStack(app, stage=stage, env=env, image_accounts=rendered.external_image_accounts())
        # The ML and Serving stacks' roles, by IAM path: the Data stack never references those stacks.
        trusted = [execution_role_exception(sagemaker_role_path(stage))]
        if stage.serving.enabled:
            trusted.append(capture_exception(serving_role_path(stage), CAPTURE_PREFIX))
            if stage.monitoring.enabled:
                trusted.append(monitoring_exception(monitoring_role_path(stage)))
        data = DataStack(
            app,
            stage=stage,
            env=env,
            network=network.network,
            trusted_principals=[*trusted, *trusted_principals],
        )
        ml = MlStack(app, stage=stage, env=env, network=network.network, data=data, render_cache=render_cache)
        serving = (
            ServingStack(app, stage=stage, env=env, network=network.network, data=data, ml=ml)
            if stage.serving.enabled
            else None
        )
    for stack in (network, data, ml, serving):
        if stack is not None:
            for key, value in stage_tags(stage).items():
                cdk.Tags.of(stack).add(key, value)
    return StageStacks(network=network, data=data, ml=ml, serving=serving)


def register_audit(app: cdk.App, *, pack: RulePack = ROOKERY_RULES) -> None:
    """cdk-nag's AwsSolutions and NIST 800-53 rev 5 packs, AWS Control Tower's proactive controls
    (cfn-guard, ``infra.audit.guard``) and rookery's own rules, on every stack."""
    # The guard plugin is typed against CDK's IPolicyValidationPluginBeta1, the same shape under jsii.
    guard = cast(cdk.IPolicyValidationPlugin, CfnGuardValidator())
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), NIST80053R5Checks(app), guard, RookeryChecks(pack)
    )


def destroy_flag(value: Any) -> bool:
    """``-c destroy_data=true|false`` (the CLI passes strings, tests may pass booleans)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError(f"-c {DESTROY_CONTEXT}={value!r}: use -c {DESTROY_CONTEXT}=true or leave it out")


def stage_from_context(app: cdk.App) -> Stage:
    name = app.node.try_get_context(STAGE_CONTEXT)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"no stage selected: pass -c {STAGE_CONTEXT}=NAME (cdk.json sets the default)")
    return load_stage(name, destroy_data=destroy_flag(app.node.try_get_context(DESTROY_CONTEXT)))


def repo_context() -> dict[str, Any]:
    """cdk.json's context plus cdk.context.json, as the CDK CLI would pass them (for in-process synth)."""
    context: dict[str, Any] = dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))
    if CDK_CONTEXT_JSON.is_file():
        context.update(json.loads(CDK_CONTEXT_JSON.read_text(encoding="utf-8")))
    return context


def build_app(
    stage_name: str, *, destroy_data: bool = False, outdir: Path | None = None, pack: RulePack = ROOKERY_RULES
) -> tuple[cdk.App, Stage, StageStacks]:
    """An app for one stage, built in-process exactly as ``cdk synth -c stage=NAME`` builds it."""
    context: Mapping[str, Any] = {**repo_context(), STAGE_CONTEXT: stage_name, DESTROY_CONTEXT: destroy_data}
    # cfn-lint runs over every template in the audit and the tests; aws-cdk-lib's own CloudFormation
    # validator would add seconds to every synth (cdk-nag and rookery's pack still run).
    app = cdk.App(
        outdir=str(outdir) if outdir else None,
        context=dict(context),
        builtin_cloud_formation_validation=False,
    )
    stage = stage_from_context(app)
    stacks = build_stacks(app, stage)
    register_audit(app, pack=pack)
    return app, stage, stacks


def synthesize(app: cdk.App) -> Path:
    """Synthesize; a failed validation still leaves the assembly and its report for the gate to read."""
    try:
        assembly = app.synth()
        return Path(assembly.directory)
    except RuntimeError as error:
        if "ValidationFailed" not in str(error) or app.outdir is None:
            raise
        return Path(app.outdir)


def gate(directory: Path) -> GateResult:
    return evaluate(read_assembly(directory))


def main(*, context: Mapping[str, Any] | None = None, outdir: Path | None = None) -> int:
    """The CDK app: exit 2 on a configuration error, 1 when the audit gate fails.

    Under ``cdk synth`` the CLI supplies context and output directory; tests pass them in.
    """
    app = cdk.App(
        context=dict(context) if context is not None else None, outdir=str(outdir) if outdir else None
    )
    try:
        stage = stage_from_context(app)
        build_stacks(app, stage)
    except ConfigError as error:
        print(f"rookery: {error}", file=sys.stderr)
        return 2
    register_audit(app)
    result = gate(synthesize(app))
    if not result.ok:
        print(result.summary(), file=sys.stderr)
        return 1
    return 0
