"""The construct contract (``infra/constructs/__init__.py``): props, early validation, secure defaults.

- No construct module takes anything from the stage that needs a ``Stage``.
- Every props class rejects invalid values and combinations with its name, the field, the value
  and the fix, before any resource exists.
- One small stack holds every construct with default props (only the required fields given); its
  template proves each documented "Secure default:".
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import importlib
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ecr as ecr
from aws_cdk.assertions import Template
from constructs import IConstruct
from infra_testing import resources

import infra.constructs
import infra.stacks.stage_props
from infra.app import RENDER_CACHE, repo_context
from infra.constructs.catalog import (
    QUERY_SCAN_LIMIT_BYTES,
    CatalogProps,
    DataCatalog,
    QueryWorkgroup,
    WorkgroupProps,
)
from infra.constructs.data_lake import DataKeys, DataKeysProps, DataLake, DataLakeProps
from infra.constructs.function import FunctionProps
from infra.constructs.guardrails import GuardrailsProps, SageMakerGuardrails, guardrails
from infra.constructs.ingestion import TRANSFORM_CONCURRENCY, IngestionProps, IngestionStream
from infra.constructs.keys import KeyProps, PurposeKey
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS
from infra.constructs.network import NetworkProps, PrivateNetwork
from infra.constructs.notebook import NotebookProps, ProjectNotebook
from infra.constructs.pipeline import (
    DeployedResources,
    PipelineProps,
    RenderedPipeline,
    TrainingPipeline,
    check_mirrors_pipeline_resources,
)
from infra.constructs.props import PropsError
from infra.constructs.registry import ModelRegistry, RegistryProps
from infra.constructs.sagemaker_role import (
    ExecutionRoleProps,
    ExecutionScope,
    SageMakerExecutionRole,
    execution_role_exception,
)
from infra.constructs.trigger import TRIGGER_CONCURRENCY, PipelineTrigger, TriggerProps
from infra.stacks.stage_props import render_for_stage
from stage import DataLayout, Stage, load_stage
from stage.model import ESSENTIAL_ENDPOINTS
from stage.names import ALL_BUCKETS

pytestmark = pytest.mark.xdist_group("infra-constructs")

Q = "probe-dev"
DATASET = load_stage("dev").dataset
ROLE_PATH = "/probe-dev/sagemaker-execution/"
PIPELINE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/probe-pipeline"


# ---------------------------------------------------------------- constructs never read the stage


def stage_dependencies(path: Path, module_name: str) -> list[str]:
    """What a module takes from the stage that a construct must not: ``Stage`` itself, the ``stage``
    package as a module (which carries ``Stage``), and any imported function with a ``Stage`` parameter."""
    module = importlib.import_module(module_name)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "stage"]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            for alias in node.names:
                where = f"from {source} import {alias.name}"
                if source.split(".")[0] == "stage" and alias.name == "Stage":
                    found.append(where)
                obj = getattr(module, alias.asname or alias.name, None)  # None: imported inside a function
                if inspect.isfunction(obj) and _takes_a_stage(obj):
                    found.append(f"{where} (takes a Stage)")
    return found


def _takes_a_stage(function: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(function)
    except NameError:  # an annotation only a type checker resolves: read it as text
        return any(re.search(r"\bStage\b", str(a)) for a in function.__annotations__.values())
    return any(hint is Stage or Stage in typing.get_args(hint) for hint in hints.values())


CONSTRUCT_MODULES = sorted(Path(infra.constructs.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", CONSTRUCT_MODULES, ids=lambda p: p.name)
def test_no_construct_takes_anything_from_the_stage_that_needs_a_stage(path: Path) -> None:
    module_name = "infra.constructs" if path.stem == "__init__" else f"infra.constructs.{path.stem}"
    assert stage_dependencies(path, module_name) == []
    assert all(value is not Stage for value in vars(importlib.import_module(module_name)).values())


def test_the_import_check_finds_the_stage_where_it_is_read() -> None:
    """The check fails on the module that reads the stage for the constructs (so it can fail)."""
    found = stage_dependencies(Path(infra.stacks.stage_props.__file__), "infra.stacks.stage_props")
    assert "from stage import Stage" in found
    assert "from stage.names import bucket_name (takes a Stage)" in found
    assert "from stage.names import model_package_group_name (takes a Stage)" in found


def test_every_construct_module_is_checked() -> None:
    checked = {p.stem for p in CONSTRUCT_MODULES}
    constructs = {"keys", "network", "data_lake", "catalog", "ingestion", "function", "guardrails"}
    assert constructs | {"registry", "sagemaker_role", "notebook", "trigger", "pipeline", "image"} <= checked


# ---------------------------------------------------------------- invalid props fail early and clearly


def _lake(**overrides: Any) -> DataLakeProps:
    fields: dict[str, Any] = {
        "bucket_names": {purpose: f"probe-{purpose}" for purpose in ALL_BUCKETS},
        "raw_expiration_days": 90,
        "noncurrent_version_expiration_days": 30,
        "infrequent_access_after_days": 30,
        "access_log_expiration_days": 90,
    }
    return DataLakeProps(**{**fields, **overrides})


def _catalog(**overrides: Any) -> CatalogProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "stage_label": "probe",
        "dataset": DATASET,
        "database_name": "probe_dev",
        "raw_table_name": "penguins_raw",
        "curated_table_name": "penguins_curated",
        "crawler_name": "probe-dev-penguins-raw",
        "security_configuration_name": "probe-dev-catalog",
    }
    return CatalogProps(**{**fields, **overrides})


def _ingestion(**overrides: Any) -> IngestionProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "dataset": DATASET,
        "delivery_stream_name": "probe-dev-penguins-ingest",
        "buffer_seconds": 60,
        "buffer_mib": 64,
    }
    return IngestionProps(**{**fields, **overrides})


def _network(**overrides: Any) -> NetworkProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "vpc_cidr": "10.0.0.0/16",
        "project_bucket_names": ("probe-raw",),
    }
    return NetworkProps(**{**fields, **overrides})


def _execution(**overrides: Any) -> ExecutionRoleProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "role_path": ROLE_PATH,
        "execution": ExecutionScope("probe-pipeline", "penguins/", "probe-models", tune=False),
    }
    return ExecutionRoleProps(**{**fields, **overrides})


def _notebook(**overrides: Any) -> NotebookProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "name": "probe-dev-notebook",
        "role_path": "/probe-dev/notebook/",
        "data_prefix": "penguins/",
        "pipeline_name": "probe-pipeline",
        "instance_type": "ml.t3.medium",
        "volume_size_gb": 5,
    }
    return NotebookProps(**{**fields, **overrides})


def _trigger(**overrides: Any) -> TriggerProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "rule_name": "probe-dev-raw-object-created",
        "pipeline_name": "probe-pipeline",
        "pipeline_arn": PIPELINE_ARN,
        "data_prefix": "penguins/",
        "error_prefix": "errors/",
    }
    return TriggerProps(**{**fields, **overrides})


def _function(**overrides: Any) -> FunctionProps:
    fields: dict[str, Any] = {
        "qualifier": Q,
        "name": "pipeline_trigger",
        "handler": "pipeline_trigger.handler.lambda_handler",
        "description": "d",
        "reserved_concurrency": 1,
    }
    return FunctionProps(**{**fields, **overrides})


INVALID: list[tuple[str, Callable[[], object], str]] = [
    ("key window", lambda: KeyProps(qualifier=Q, purpose="data", description="d", pending_window_days=5),
     "KeyProps.pending_window_days = 5: KMS waits 7 to 30 days before deleting a key"),
    ("key purpose", lambda: KeyProps(qualifier=Q, purpose="Data", description="d"),
     "KeyProps.purpose = 'Data': is part of the key alias: lower-case letters"),
    ("qualifier", lambda: KeyProps(qualifier="Probe dev", purpose="data", description="d"),
     "KeyProps.qualifier = 'Probe dev': must be 3-41 lower-case letters"),
    ("data keys window", lambda: DataKeysProps(qualifier=Q, pending_window_days=31),
     "DataKeysProps.pending_window_days = 31: KMS waits 7 to 30 days"),
    ("lake buckets", lambda: _lake(bucket_names={"raw": "probe-raw"}),
     "DataLakeProps.bucket_names = .*: name exactly the buckets \\['raw', 'curated', 'artifacts', "
     "'access-logs'\\], by purpose"),
    ("lake days", lambda: _lake(raw_expiration_days=0),
     "DataLakeProps.raw_expiration_days = 0: lifecycle rules count whole days; use 1 or more"),
    ("table name", lambda: _catalog(raw_table_name="Penguins-Raw"),
     "CatalogProps.raw_table_name = 'Penguins-Raw': Athena reads only lower-case letters"),
    ("one table twice", lambda: _catalog(curated_table_name="penguins_raw"),
     "CatalogProps.curated_table_name = 'penguins_raw': equals raw_table_name"),
    ("catalog retention", lambda: _catalog(log_retention_days=100),
     "CatalogProps.log_retention_days = 100: CloudWatch Logs accepts only \\[1, 3, 5"),
    ("scan limit", lambda: WorkgroupProps(name="probe", stage_label="probe", scan_limit_bytes=1024),
     "WorkgroupProps.scan_limit_bytes = 1024: Athena's smallest per-query cutoff is 10000000 bytes"),
    ("workgroup name", lambda: WorkgroupProps(name="probe workgroup", stage_label="probe"),
     "WorkgroupProps.name = 'probe workgroup': 1-128 letters"),
    ("errors among data", lambda: _ingestion(layout=DataLayout(error_prefix="penguins/errors/")),
     "IngestionProps.layout = .*: failed records under 'penguins/errors/' would land among the data "
     "under 'penguins/'"),
    ("stream name", lambda: _ingestion(delivery_stream_name="x" * 65),
     "IngestionProps.delivery_stream_name = 'x+': 1-64 letters"),
    ("cidr", lambda: _network(vpc_cidr="10.0.0.0/33"),
     "NetworkProps.vpc_cidr = '10.0.0.0/33': .*use a block like '10.20.0.0/16'"),
    ("azs in cidr", lambda: _network(vpc_cidr="10.0.0.0/22", max_azs=6),
     "NetworkProps.max_azs = 6: vpc_cidr = '10.0.0.0/22' holds 4 /24 subnets but max_azs = 6"),
    ("essential endpoints", lambda: _network(interface_endpoints=("sts",)),
     "NetworkProps.interface_endpoints = \\('sts',\\): lacks \\['sagemaker.api', 'logs', 'kms', 'ecr.api', "
     "'ecr.dkr'\\]"),
    ("endpoint twice", lambda: _network(interface_endpoints=(*ESSENTIAL_ENDPOINTS, "sts")),
     "NetworkProps.interface_endpoints = .*: an endpoint is listed twice"),
    ("unknown endpoint", lambda: _network(interface_endpoints=(*ESSENTIAL_ENDPOINTS, "nope")),
     "NetworkProps.interface_endpoints = .*: no endpoint policy for \\['nope'\\]; choose from"),
    ("no buckets", lambda: _network(project_bucket_names=()),
     "NetworkProps.project_bucket_names = \\(\\): name the project's buckets"),
    ("function retention", lambda: _function(log_retention_days=2),
     "FunctionProps.log_retention_days = 2: CloudWatch Logs accepts only"),
    ("guardrails qualifier", lambda: GuardrailsProps(qualifier=""),
     "GuardrailsProps.qualifier = '': must be 3-41 lower-case letters"),
    ("group name", lambda: RegistryProps(qualifier=Q, group_name="probe_models"),
     "RegistryProps.group_name = 'probe_models': letters, digits and single hyphens"),
    ("root role path", lambda: _execution(role_path="/"),
     "ExecutionRoleProps.role_path = '/': .*not '/' alone, which is every role of the account"),
    ("relative role path", lambda: _execution(role_path="probe-dev/sagemaker-execution/"),
     "ExecutionRoleProps.role_path = 'probe-dev/sagemaker-execution/': a role path is trusted as a whole"),
    ("notebook name", lambda: _notebook(name="probe_notebook"),
     "NotebookProps.name = 'probe_notebook': letters, digits and single hyphens"),
    ("notebook idle", lambda: _notebook(idle_minutes=0),
     "NotebookProps.idle_minutes = 0: the auto-stop needs at least 1 idle minute"),
    ("notebook openers", lambda: _notebook(access_role_names=("arn:aws:iam::123456789012:role/Ds",)),
     "NotebookProps.access_role_names = .*: \\['arn:aws:iam::123456789012:role/Ds'\\] are not IAM role "
     "names; give names, not ARNs"),
    ("notebook prefix", lambda: _notebook(data_prefix="/penguins/"),
     "NotebookProps.data_prefix = '/penguins/': must be an S3 key prefix"),
    ("trigger on errors", lambda: _trigger(error_prefix="penguins/errors/"),
     "TriggerProps.error_prefix = 'penguins/errors/': overlaps data_prefix = 'penguins/': failed records "
     "would start the pipeline"),
    ("trigger prefix", lambda: _trigger(data_prefix="penguins"),
     "TriggerProps.data_prefix = 'penguins': must be an S3 key prefix"),
    ("trigger target", lambda: _trigger(pipeline_arn=""),
     "TriggerProps.pipeline_arn = '': pass the TrainingPipeline's pipeline_name and pipeline_arn"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("factory", "message"), [(f, m) for _, f, m in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_props_fail_with_the_props_field_value_and_fix(
    factory: Callable[[], object], message: str
) -> None:
    with pytest.raises(PropsError, match=f"^{message}"):
        factory()


def test_props_are_frozen() -> None:
    props = _network()
    with pytest.raises(dataclasses.FrozenInstanceError):
        props.max_azs = 3  # type: ignore[misc]
    lake = _lake()
    with pytest.raises(TypeError):
        lake.bucket_names["raw"] = "elsewhere"  # type: ignore[index]


def test_the_execution_role_exception_refuses_a_path_that_trusts_every_role() -> None:
    with pytest.raises(ValueError, match=r"role_path = '/': .*not '/' alone"):
        execution_role_exception("/")


def test_more_azs_than_an_environment_agnostic_stack_sees_fail_before_the_vpc_exists() -> None:
    app = cdk.App(context=repo_context())
    agnostic = cdk.Stack(app, "Agnostic")
    with pytest.raises(PropsError, match=r"NetworkProps.max_azs = 3: max_azs = 3 needs a known environment"):
        PrivateNetwork(agnostic, "Network", props=_network(max_azs=3))
    assert agnostic.node.find_child("Network").node.children == []
    # The prod stage's account and region: cdk.context.json holds their Availability Zones.
    pinned = cdk.Stack(app, "Pinned", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    network = PrivateNetwork(pinned, "Network", props=_network(max_azs=3))
    assert len(network.vpc.isolated_subnets) == 3


def test_guardrails_without_subnets_fail_with_the_fix() -> None:
    stack = cdk.Stack(cdk.App(context=repo_context()), "Guardrails")
    with pytest.raises(ValueError, match="need the stage's subnets, security groups and KMS keys"):
        SageMakerGuardrails(
            stack, "Guardrails", props=GuardrailsProps(qualifier=Q), subnets=[], security_groups=[], keys=[]
        )


# ---------------------------------------------------------------- the pipeline's typed resources


@pytest.fixture(scope="module")
def rendered() -> RenderedPipeline:
    return render_for_stage(load_stage("dev"), cache_dir=RENDER_CACHE)


def _placeholder_resources(rendered: RenderedPipeline) -> DeployedResources:
    """The placeholders themselves as the stack's values: the mirror takes ``PipelineResources``' fields."""
    return DeployedResources(**rendered.placeholders.model_dump())


def _pipeline(rendered: RenderedPipeline, resources: DeployedResources, group: str = "") -> TrainingPipeline:
    stack = cdk.Stack(cdk.App(context=repo_context()), "Pipeline")
    group = group or rendered.placeholders.model_package_group_name
    registry = ModelRegistry(stack, "Registry", props=RegistryProps(qualifier=Q, group_name=group))
    role = cdk.aws_iam.Role(stack, "Role", assumed_by=cdk.aws_iam.ServicePrincipal("sagemaker.amazonaws.com"))
    return TrainingPipeline(
        stack,
        "Pipeline",
        props=PipelineProps(qualifier=Q, rendered=rendered),
        resources=resources,
        role=role,
        registry=registry,
    )


def test_the_body_is_the_rendered_definition_with_each_resource_in_its_placeholders_place(
    rendered: RenderedPipeline,
) -> None:
    pipeline = _pipeline(rendered, _placeholder_resources(rendered))
    body = cdk.Stack.of(pipeline).resolve(pipeline.pipeline.pipeline_definition)["PipelineDefinitionBody"]
    assert json.loads(body) == rendered.definition
    assert dict(pipeline.tokens) == rendered.placeholders.values()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"subnet_ids": ("subnet-1",)},
            r"DeployedResources.subnet_ids = \('subnet-1',\): 1 values but the definition was "
            r"rendered with 2",
        ),
        (
            {"security_group_ids": ("sg-1", "sg-2")},
            r"DeployedResources.security_group_ids = .*: 2 values but the definition was rendered with 1",
        ),
        (
            {"pipeline_name": "other-pipeline"},
            r"DeployedResources.pipeline_name = 'other-pipeline': the definition was rendered with "
            r"'rookery-dev-pipeline'; pass that name",
        ),
        (
            {"model_package_group_name": "other-models"},
            r"DeployedResources.model_package_group_name = 'other-models': the definition was rendered with "
            r"'rookery-dev-models'",
        ),
    ],
)
def test_resources_that_do_not_fit_the_rendered_definition_fail_before_the_pipeline_exists(
    rendered: RenderedPipeline, change: dict[str, Any], message: str
) -> None:
    resources = dataclasses.replace(_placeholder_resources(rendered), **change)
    with pytest.raises(PropsError, match=f"^{message}"):
        _pipeline(rendered, resources)


def test_a_registry_other_than_the_definitions_fails_with_the_fix(rendered: RenderedPipeline) -> None:
    with pytest.raises(
        PropsError,
        match=r"PipelineProps.rendered = .*: the definition registers into 'rookery-dev-models' but the "
        r"registry group is 'other-models'; both must come from model_package_group_name",
    ):
        _pipeline(rendered, _placeholder_resources(rendered), group="other-models")


def test_a_missing_or_misspelt_resource_is_a_type_error(rendered: RenderedPipeline) -> None:
    """mypy rejects both calls when written out; at run time they fail before any construct exists."""
    values = rendered.placeholders.model_dump()
    raw = values.pop("raw_bucket")
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'raw_bucket'"):
        DeployedResources(**values)
    with pytest.raises(TypeError, match="unexpected keyword argument 'raw_bucket_name'"):
        DeployedResources(**values, raw_bucket_name=raw)  # type: ignore[call-arg]


def test_deployed_resources_mirror_pipeline_resources_field_for_field() -> None:
    check_mirrors_pipeline_resources()

    @dataclass(frozen=True, kw_only=True)
    class Stale:
        role_arn: str
        subnet_ids: str  # a list field given as one value

    with pytest.raises(
        TypeError, match=r"Stale and pipelines.settings.PipelineResources differ in \['artifacts_bucket'"
    ):
        check_mirrors_pipeline_resources(Stale)
    with pytest.raises(TypeError, match=r"'security_group_ids', 'subnet_ids', 'volume_kms_key_arn'\]"):
        check_mirrors_pipeline_resources(Stale)


# ---------------------------------------------------------------- secure defaults, proven on a template


@dataclass(frozen=True)
class Probe:
    """One stack with every construct built from default props (only required fields given)."""

    stack: cdk.Stack
    template: Mapping[str, Any]
    key: PurposeKey
    queue_key: PurposeKey
    network: PrivateNetwork
    keys: DataKeys
    lake: DataLake
    catalog: DataCatalog
    workgroup: QueryWorkgroup
    ingestion: IngestionStream
    guardrails: SageMakerGuardrails
    registry: ModelRegistry
    execution: SageMakerExecutionRole
    notebook: ProjectNotebook
    trigger: PipelineTrigger

    def resource(self, construct: IConstruct) -> Mapping[str, Any]:
        return self.template["Resources"][self.logical_id(construct)]

    def props(self, construct: IConstruct) -> Mapping[str, Any]:
        return self.resource(construct)["Properties"]

    def logical_id(self, construct: IConstruct) -> str:
        cfn = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
        assert isinstance(cfn, cdk.CfnResource)
        return self.stack.get_logical_id(cfn)


@pytest.fixture(scope="module")
def probe() -> Probe:
    stack = cdk.Stack(cdk.App(context=repo_context()), "Probe")
    key = PurposeKey(stack, "Key", props=KeyProps(qualifier=Q, purpose="probe", description="probe records"))
    queue_key = PurposeKey(
        stack, "QueueKey", props=KeyProps(qualifier=Q, purpose="queue", description="dead letters")
    )
    network = PrivateNetwork(stack, "Network", props=_network())
    keys = DataKeys(stack, "Keys", props=DataKeysProps(qualifier=Q))
    lake = DataLake(stack, "Lake", props=_lake(), keys=keys)
    raw, curated, artifacts = (lake.buckets[p] for p in ("raw", "curated", "artifacts"))
    catalog = DataCatalog(
        stack, "Catalog", props=_catalog(), keys=keys, raw_bucket=raw, curated_bucket=curated
    )
    workgroup = QueryWorkgroup(
        stack,
        "Queries",
        props=WorkgroupProps(name="probe-dev", stage_label="probe"),
        keys=keys,
        results_bucket=artifacts,
    )
    lambdas = network.workload_security_groups["lambda"]
    ingestion = IngestionStream(
        stack,
        "Ingestion",
        props=_ingestion(),
        keys=keys,
        raw_bucket=raw,
        vpc=network.vpc,
        subnets=network.subnets,
        function_security_group=lambdas,
    )
    sagemaker = network.workload_security_groups["sagemaker"]
    guardrails = SageMakerGuardrails(
        stack,
        "Guardrails",
        props=GuardrailsProps(qualifier=Q),
        subnets=network.vpc.isolated_subnets,
        security_groups=[sagemaker],
        keys=[keys.artifacts, keys.data],
    )
    registry = ModelRegistry(stack, "Registry", props=RegistryProps(qualifier=Q, group_name="probe-models"))
    execution = SageMakerExecutionRole(
        stack,
        "Execution",
        props=_execution(),
        raw_bucket=raw,
        artifacts_bucket=artifacts,
        data_key=keys.data,
        artifacts_key=keys.artifacts,
        image_repository=ecr.Repository.from_repository_name(stack, "Repo", "probe"),
        vpc=network.vpc,
        boundary=guardrails.policy,
    )
    notebook = ProjectNotebook(
        stack,
        "Notebook",
        props=_notebook(),
        subnet=network.vpc.isolated_subnets[0],
        security_group=sagemaker,
        raw_bucket=raw,
        curated_bucket=curated,
        artifacts_bucket=artifacts,
        data_key=keys.data,
        artifacts_key=keys.artifacts,
        boundary=guardrails.policy,
    )
    trigger = PipelineTrigger(
        stack,
        "Trigger",
        props=_trigger(),
        raw_bucket=raw,
        vpc=network.vpc,
        subnets=network.subnets,
        security_group=lambdas,
        logs_key=keys.logs,
        queue_key=queue_key.key,
    )
    return Probe(
        stack=stack,
        template=Template.from_stack(stack).to_json(),
        key=key,
        queue_key=queue_key,
        network=network,
        keys=keys,
        lake=lake,
        catalog=catalog,
        workgroup=workgroup,
        ingestion=ingestion,
        guardrails=guardrails,
        registry=registry,
        execution=execution,
        notebook=notebook,
        trigger=trigger,
    )


def test_a_key_rotates_waits_30_days_to_be_deleted_and_trusts_no_service(probe: Probe) -> None:
    for key in (
        probe.key.key,
        probe.keys.data,
        probe.keys.artifacts,
        probe.keys.logs,
        probe.network.flow_logs_key,
    ):
        props = probe.props(key)
        assert props["EnableKeyRotation"] is True
        assert props["PendingWindowInDays"] == 30
    statements = probe.props(probe.key.key)["KeyPolicy"]["Statement"]
    assert [s["Principal"] for s in statements] == [
        {
            "AWS": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
                ]
            }
        }
    ]
    # Only a key for log groups trusts a service: CloudWatch Logs.
    logs = [
        s["Principal"]
        for s in probe.props(probe.keys.logs)["KeyPolicy"]["Statement"]
        if "Service" in s["Principal"]
    ]
    assert logs == [{"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}]


def test_the_network_opens_only_the_essential_interface_endpoints(probe: Probe) -> None:
    assert tuple(probe.network.interface_endpoints) == ESSENTIAL_ENDPOINTS
    endpoints = resources(probe.template, "AWS::EC2::VPCEndpoint").values()
    interface = [e for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"]
    assert len(interface) == len(ESSENTIAL_ENDPOINTS)
    assert all(e["Properties"]["PolicyDocument"]["Statement"] for e in endpoints)


def test_every_log_group_keeps_a_year_encrypted(probe: Probe) -> None:
    groups = resources(probe.template, "AWS::Logs::LogGroup")
    # flow logs, the crawler, Firehose delivery, the transform and the trigger functions
    assert len(groups) == 5
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == DEFAULT_RETENTION_DAYS == 365
        assert "KmsKeyId" in group["Properties"]
    assert probe.props(probe.network.flow_log_group)["RetentionInDays"] == 365


def test_buckets_and_the_registry_survive_cdk_destroy_without_any_stack_aspect(probe: Probe) -> None:
    for bucket in (*probe.lake.buckets.values(), probe.lake.access_logs):
        assert (probe.resource(bucket)["DeletionPolicy"], probe.resource(bucket)["UpdateReplacePolicy"]) == (
            "Retain",
            "Retain",
        )
    assert resources(probe.template, "Custom::S3AutoDeleteObjects") == {}
    group = probe.resource(probe.registry.group)
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_workgroup_caps_each_query_and_keeps_named_queries(probe: Probe) -> None:
    props = probe.props(probe.workgroup.workgroup)
    assert (
        props["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"]
        == QUERY_SCAN_LIMIT_BYTES
        == 10 * 1024**3
    )
    assert props["WorkGroupConfiguration"]["EnforceWorkGroupConfiguration"] is True
    assert props["RecursiveDeleteOption"] is False


def test_functions_reserve_their_concurrency(probe: Probe) -> None:
    transform = probe.props(probe.ingestion.transform.function)
    trigger = probe.props(probe.trigger.function.function)
    assert (transform["ReservedConcurrentExecutions"], trigger["ReservedConcurrentExecutions"]) == (
        TRANSFORM_CONCURRENCY,
        TRIGGER_CONCURRENCY,
    )


def test_the_boundary_denies_every_guardrail_and_bounds_the_execution_role(probe: Probe) -> None:
    statements = probe.props(probe.guardrails.policy)["PolicyDocument"]["Statement"]
    denies = {s["Sid"] for s in statements if s["Effect"] == "Deny"}
    expected = {
        f"Deny{rule.sid}Missing"
        for rule in guardrails(subnet_ids=["s"], security_group_ids=["g"], kms_key_arns=["k"])
    }
    assert expected <= denies
    role = probe.props(probe.execution.role)
    assert role["Path"] == ROLE_PATH
    assert role["PermissionsBoundary"] == {"Ref": probe.logical_id(probe.guardrails.policy)}


def test_the_notebook_runs_al2023_stops_after_an_idle_hour_and_nobody_may_open_it(probe: Probe) -> None:
    instance = probe.props(probe.notebook.instance)
    assert instance["PlatformIdentifier"] == "notebook-al2023-v1"
    assert (instance["RootAccess"], instance["DirectInternetAccess"]) == ("Disabled", "Disabled")
    [hook] = probe.props(probe.notebook.lifecycle)["OnStart"]
    assert "--idle-minutes 60 " in base64.b64decode(hook["Content"]).decode("utf-8")
    assert "Roles" not in probe.props(probe.notebook.open_policy)
