"""The one place a stage becomes construct props: a ``<construct>_props(stage, ...)`` function per construct.

Constructs never see the ``Stage``; stacks call these functions and hand each construct its props.
Names come from ``stage.names`` (and ``pipelines.settings`` for the pipeline's own). A props object
that rejects what the stage produced raises ``PropsError``; ``stage_errors`` turns it into a
``ConfigError`` naming the stage, so ``cdk synth`` prints one line and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from infra.constructs.catalog import CatalogProps, WorkgroupProps
from infra.constructs.data_lake import DataKeysProps, DataLakeProps
from infra.constructs.deployer import DeployerProps
from infra.constructs.endpoint import EndpointProps, ModelSecurityGroupProps
from infra.constructs.endpoint_alarms import RollbackAlarmsProps
from infra.constructs.endpoint_scaling import AutoscalingProps
from infra.constructs.guardrails import GuardrailsProps
from infra.constructs.inference_api import InferenceApiProps
from infra.constructs.ingestion import IngestionProps
from infra.constructs.keys import MAX_PENDING_WINDOW_DAYS, MIN_PENDING_WINDOW_DAYS, KeyProps
from infra.constructs.monitoring import MonitoringProps
from infra.constructs.network import NetworkProps
from infra.constructs.notebook import NotebookProps
from infra.constructs.pipeline import PipelineProps, RenderedPipeline
from infra.constructs.props import PropsError
from infra.constructs.registry import RegistryProps
from infra.constructs.sagemaker_role import ExecutionRoleProps, ExecutionScope
from infra.constructs.serving_role import ServingRoleProps
from infra.constructs.trigger import RetrainProps, TriggerProps
from pipelines import PipelineResources, PipelineSettings, SettingsError, render_definition_cached
from stage import ConfigError, Stage
from stage.alarms import rollback_alarms
from stage.capture import CSV_CONTENT_TYPES, JSON_CONTENT_TYPES
from stage.monitoring import SECONDS_PER_HOUR
from stage.names import (
    ALL_BUCKETS,
    API_STAGE_NAME,
    CAPTURE_PREFIX,
    DEPLOYMENT_EVENT_SOURCE,
    DEPLOYMENT_EVENT_TYPE,
    DEPLOYMENT_METRIC_NAMESPACE,
    GROUND_TRUTH_PREFIX,
    MONITORING_PREFIX,
    VARIANT_NAME,
    api_name,
    approval_rule_name,
    athena_workgroup_name,
    bucket_name,
    crawler_name,
    curated_table_name,
    delivery_stream_name,
    deployer_name,
    deployment_role_path,
    endpoint_name,
    glue_database_name,
    glue_security_configuration_name,
    model_package_group_name,
    monitoring_alarm_names,
    monitoring_role_path,
    monitoring_schedule_names,
    monitoring_topic_name,
    notebook_instance_name,
    notebook_role_path,
    raw_table_name,
    retrain_rule_name,
    sagemaker_role_path,
    serving_role_path,
    stage_tags,
    trigger_rule_name,
)


@contextmanager
def stage_errors(stage: Stage) -> Iterator[None]:
    """Props the stage produced but a construct rejects are the stage's configuration error."""
    try:
        yield
    except PropsError as error:
        raise ConfigError(f"stage {stage.name!r}: {error}") from None


def key_pending_window_days(stage: Stage) -> int:
    """Production keys wait the longest window before deletion; other stages the shortest."""
    return MAX_PENDING_WINDOW_DAYS if stage.production else MIN_PENDING_WINDOW_DAYS


def bucket_names(stage: Stage, *, account: str, region: str) -> dict[str, str]:
    """Every bucket of the stage by purpose (``ALL_BUCKETS``); account and region may be tokens."""
    return {purpose: bucket_name(stage, purpose, account=account, region=region) for purpose in ALL_BUCKETS}


def network_props(
    stage: Stage, *, account: str, region: str, image_accounts: tuple[str, ...] = ()
) -> NetworkProps:
    return NetworkProps(
        qualifier=stage.qualifier,
        vpc_cidr=stage.vpc_cidr,
        max_azs=stage.max_azs,
        interface_endpoints=stage.interface_endpoints,
        # The Data stack creates these; naming them from config avoids a cross-stack reference.
        project_bucket_names=tuple(bucket_names(stage, account=account, region=region).values()),
        log_retention_days=stage.log_retention_days,
        key_pending_window_days=key_pending_window_days(stage),
        image_accounts=image_accounts,
    )


def stage_label(stage: Stage) -> str:
    """How stack and resource descriptions name the stage: ``rookery <stage>``."""
    return f"rookery {stage.name}"


def data_keys_props(stage: Stage) -> DataKeysProps:
    return DataKeysProps(qualifier=stage.qualifier, pending_window_days=key_pending_window_days(stage))


def data_lake_props(stage: Stage, *, account: str, region: str) -> DataLakeProps:
    data = stage.data
    return DataLakeProps(
        bucket_names=bucket_names(stage, account=account, region=region),
        raw_expiration_days=data.raw_expiration_days,
        noncurrent_version_expiration_days=data.noncurrent_version_expiration_days,
        infrequent_access_after_days=data.infrequent_access_after_days,
        access_log_expiration_days=data.access_log_expiration_days,
        destroy_on_delete=stage.removal_destroys_data,
    )


def catalog_props(stage: Stage) -> CatalogProps:
    return CatalogProps(
        qualifier=stage.qualifier,
        stage_label=stage_label(stage),
        dataset=stage.dataset,
        layout=stage.data.layout,
        database_name=glue_database_name(stage),
        raw_table_name=raw_table_name(stage),
        curated_table_name=curated_table_name(stage),
        crawler_name=crawler_name(stage),
        security_configuration_name=glue_security_configuration_name(stage),
        log_retention_days=stage.log_retention_days,
    )


def workgroup_props(stage: Stage) -> WorkgroupProps:
    return WorkgroupProps(
        name=athena_workgroup_name(stage),
        stage_label=stage_label(stage),
        destroy_on_delete=stage.removal_destroys_data,
    )


def ingestion_props(stage: Stage) -> IngestionProps:
    return IngestionProps(
        qualifier=stage.qualifier,
        dataset=stage.dataset,
        layout=stage.data.layout,
        delivery_stream_name=delivery_stream_name(stage),
        buffer_seconds=stage.data.firehose_buffer_seconds,
        buffer_mib=stage.data.firehose_buffer_mib,
        log_retention_days=stage.log_retention_days,
    )


def render_for_stage(stage: Stage, *, cache_dir: Path) -> RenderedPipeline:
    """The stage's pipeline (train or tune as the stage says) with placeholder resources.

    Invalid pipeline settings surface as ``ConfigError`` (one line at synth, no traceback). The
    render cache means a synth imports the SageMaker SDK only when the inputs changed.
    """
    try:
        settings = PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage))
    except SettingsError as error:
        raise ConfigError(str(error)) from None
    return RenderedPipeline(settings=settings, definition=render_definition_cached(settings, cache_dir))


def pipeline_props(stage: Stage, rendered: RenderedPipeline) -> PipelineProps:
    return PipelineProps(qualifier=stage.qualifier, rendered=rendered)


def guardrails_props(stage: Stage) -> GuardrailsProps:
    return GuardrailsProps(qualifier=stage.qualifier, require_approval=stage.ml.requires_approval)


def registry_props(stage: Stage) -> RegistryProps:
    return RegistryProps(
        qualifier=stage.qualifier,
        group_name=model_package_group_name(stage),
        destroy_on_delete=stage.removal_destroys_data,
    )


def execution_role_props(stage: Stage, rendered: RenderedPipeline) -> ExecutionRoleProps:
    return ExecutionRoleProps(
        qualifier=stage.qualifier,
        role_path=sagemaker_role_path(stage),
        execution=ExecutionScope(
            pipeline_name=rendered.placeholders.pipeline_name,
            data_prefix=rendered.settings.data_prefix,
            model_package_group=rendered.placeholders.model_package_group_name,
            tune=rendered.has_tuning,
            external_images=rendered.external_images(),
            registration_statuses=stage.ml.registration_statuses,
        ),
    )


def queue_key_props(stage: Stage) -> KeyProps:
    return KeyProps(
        qualifier=stage.qualifier,
        purpose="pipeline-events",
        description="dead letters of the pipeline trigger",
        pending_window_days=key_pending_window_days(stage),
    )


def trigger_props(stage: Stage, *, pipeline_name: str, pipeline_arn: str) -> TriggerProps:
    return TriggerProps(
        qualifier=stage.qualifier,
        rule_name=trigger_rule_name(stage),
        pipeline_name=pipeline_name,
        pipeline_arn=pipeline_arn,
        data_prefix=stage.data.layout.data_prefix(stage.dataset),
        error_prefix=stage.data.layout.error_prefix,
        log_retention_days=stage.log_retention_days,
        retrain=retrain_props(stage),
    )


def retrain_props(stage: Stage) -> RetrainProps | None:
    """The retrain rule where the stage's monitoring alarms retrain; they are named from the stage, as
    the Serving stack names them, so the ML stack refers to nothing of the Serving stack."""
    monitoring = stage.monitoring
    if not monitoring.retrains:
        return None
    return RetrainProps(
        rule_name=retrain_rule_name(stage),
        alarm_names=tuple(monitoring_alarm_names(stage).values()),
        min_interval_hours=monitoring.retrain_min_interval_hours,
    )


def notebook_props(stage: Stage, *, pipeline_name: str, endpoint_ids: Mapping[str, str]) -> NotebookProps:
    """``endpoint_ids``: the stage's interface endpoint ids by config name (the open policy names them)."""
    notebook = stage.notebook
    return NotebookProps(
        qualifier=stage.qualifier,
        name=notebook_instance_name(stage),
        role_path=notebook_role_path(stage),
        data_prefix=stage.data.layout.data_prefix(stage.dataset),
        pipeline_name=pipeline_name,
        instance_type=notebook.instance_type,
        volume_size_gb=notebook.volume_size_gb,
        platform_identifier=notebook.platform_identifier,
        idle_minutes=notebook.idle_minutes,
        access_role_names=notebook.access_role_names,
        source_vpc_endpoint_ids=tuple(endpoint_ids.get(e, e) for e in notebook.open_from_vpc_endpoints),
        source_cidrs=notebook.open_from_cidrs,
    )


# ---------------------------------------------------------------- Serving


def model_security_group_props(stage: Stage) -> ModelSecurityGroupProps:
    return ModelSecurityGroupProps(endpoint_name=endpoint_name(stage))


def serving_role_props(stage: Stage, *, pipeline_name: str) -> ServingRoleProps:
    return ServingRoleProps(
        qualifier=stage.qualifier,
        role_path=serving_role_path(stage),
        endpoint_name=endpoint_name(stage),
        # Registered versions point at model.tar.gz files the pipeline's jobs wrote under its prefix.
        model_artifacts_prefix=f"{pipeline_name}/",
        capture_prefix=CAPTURE_PREFIX,
    )


def endpoint_props(stage: Stage, *, model_package: str) -> EndpointProps:
    serving = stage.serving
    storage = serving.volume_encryption == "instance-storage"
    return EndpointProps(
        endpoint_name=endpoint_name(stage),
        variant_name=VARIANT_NAME,
        model_package=model_package,
        instance_type=serving.instance_type,
        initial_instance_count=serving.initial_instance_count,
        capture_prefix=CAPTURE_PREFIX,
        capture_sampling_percent=serving.capture_sampling_percent,
        capture_csv_content_types=CSV_CONTENT_TYPES,
        capture_json_content_types=JSON_CONTENT_TYPES,
        deployment=serving.deployment,
        rollback_alarm_names=tuple(alarm.name for alarm in rollback_alarms(stage)),
        instance_storage_reason=(
            f"{serving.instance_type} keeps the model on local NVMe instance storage, which the instance "
            "encrypts in hardware and where SageMaker rejects a volume KMS key (serving.volume_encryption = "
            '"instance-storage")'
            if storage
            else None
        ),
    )


def rollback_alarms_props(stage: Stage) -> RollbackAlarmsProps:
    return RollbackAlarmsProps(alarms=rollback_alarms(stage))


def autoscaling_props(stage: Stage) -> AutoscalingProps:
    serving = stage.serving
    return AutoscalingProps(
        endpoint_name=endpoint_name(stage),
        variant_name=VARIANT_NAME,
        min_instances=serving.min_instances,
        max_instances=serving.max_instances,
        invocations_per_instance=serving.invocations_per_instance,
        scale_in_cooldown_seconds=serving.scale_in_cooldown_seconds,
        scale_out_cooldown_seconds=serving.scale_out_cooldown_seconds,
    )


def inference_api_props(stage: Stage) -> InferenceApiProps:
    api = stage.serving.api
    return InferenceApiProps(
        api_name=api_name(stage),
        stage_name=API_STAGE_NAME,
        endpoint_name=endpoint_name(stage),
        throttle_rate_per_second=api.throttle_rate_per_second,
        throttle_burst=api.throttle_burst,
        quota_per_day=api.quota_per_day,
        log_retention_days=stage.log_retention_days,
    )


# ---------------------------------------------------------------- Serving: the deployer


def deployer_queue_key_props(stage: Stage) -> KeyProps:
    return KeyProps(
        qualifier=stage.qualifier,
        purpose="deployment-events",
        description="dead letters of the deployer's approval rule and functions",
        pending_window_days=key_pending_window_days(stage),
    )


def deployer_props(stage: Stage) -> DeployerProps:
    monitored = stage.monitoring.enabled
    return DeployerProps(
        qualifier=stage.qualifier,
        name=deployer_name(stage),
        rule_name=approval_rule_name(stage),
        model_package_group=model_package_group_name(stage),
        endpoint_name=endpoint_name(stage),
        variant_name=VARIANT_NAME,
        rollback_alarm_names=tuple(alarm.name for alarm in rollback_alarms(stage)),
        serving_role_path=serving_role_path(stage),
        deployment_role_path=deployment_role_path(stage),
        resource_tags=stage_tags(stage),
        event_source=DEPLOYMENT_EVENT_SOURCE,
        event_type=DEPLOYMENT_EVENT_TYPE,
        metric_namespace=DEPLOYMENT_METRIC_NAMESPACE,
        update_seconds=stage.serving.deployment.update_seconds(),
        log_retention_days=stage.log_retention_days,
        # What the stack's updates create, move and remove with the baseline parameter.
        monitoring_schedule_names=tuple(monitoring_schedule_names(stage).values()) if monitored else (),
        monitoring_alarm_names=tuple(monitoring_alarm_names(stage).values()) if monitored else (),
        monitoring_role_path=monitoring_role_path(stage) if monitored else None,
    )


def monitoring_props(stage: Stage, *, pipeline_name: str) -> MonitoringProps:
    monitoring = stage.monitoring
    return MonitoringProps(
        qualifier=stage.qualifier,
        role_path=monitoring_role_path(stage),
        endpoint_name=endpoint_name(stage),
        schedule_names=monitoring_schedule_names(stage),
        alarm_names=monitoring_alarm_names(stage),
        topic_name=monitoring_topic_name(stage),
        schedule_expression=monitoring.schedule_expression,
        period_seconds=monitoring.every_hours * SECONDS_PER_HOUR,
        instance_type=monitoring.instance_type,
        volume_size_gb=monitoring.volume_size_gb,
        max_runtime_seconds=monitoring.max_runtime_seconds,
        dataset_schema_json=stage.dataset.to_json(),
        capture_prefix=CAPTURE_PREFIX,
        ground_truth_prefix=GROUND_TRUTH_PREFIX,
        results_prefix=MONITORING_PREFIX,
        # The Baseline step writes under the pipeline's per-execution prefix of the artifacts bucket.
        baselines_prefix=f"{pipeline_name}/",
    )
