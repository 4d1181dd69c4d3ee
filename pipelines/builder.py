"""The one pipeline definition: ``build_pipeline(settings)`` and ``render_definition(settings)``.

Profile -> Fit -> Preprocess -> Train | Tune -> Evaluate -> Gate --if--> Baseline -> Register -> CreateModel
                                                                       -> BatchTransform
                                                       \\--else--> Fail (names the metric, its value, the bar)

Pure: no AWS call and no environment read (the SDK's own process-wide switches are set and
restored in ``pipelines._sdk``). This is the only module that imports the SageMaker SDK (about
six seconds); ``pipelines`` imports it on first use, so commands that only read a definition
(validate, status) never pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from pipelines import contract, fixes
from pipelines import parameters as names
from pipelines._sdk import OFFLINE_KEY, TELEMETRY_OFF, config_lookups_off, quiet_sdk_logging, sdk_environment
from pipelines.findings import acknowledgement_line
from pipelines.settings import BUILTIN_XGBOOST_VERSION, TUNING_RANGES, PipelineSettings, operating_point_arg
from pipelines.steps import (
    BASELINE,
    BATCH_TRANSFORM,
    CREATE_MODEL,
    EVALUATE,
    FAIL,
    FIT,
    GATE,
    INTER_CONTAINER_ENCRYPTION,
    NETWORK_ISOLATION,
    PREPROCESS,
    PROFILE,
    REGISTER,
    TRAIN,
    TUNE,
)
from rookery_contracts import evaluation, metrics
from rookery_contracts import monitoring as mon
from rookery_contracts.env import DATASET_SCHEMA_ENV, DECISION_THRESHOLD_ENV
from rookery_contracts.model_layout import MODEL_ARCHIVE

# The SDK needs its environment switches while it imports (see pipelines._sdk).
with sdk_environment():
    from sagemaker.core import image_uris
    from sagemaker.core.model_registry import create_model_package_from_containers
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        CheckpointConfig,
        MetricDefinition,
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
        StoppingCondition,
    )
    from sagemaker.core.training.configs import Compute, InputData, Networking
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import (
        ConditionStep,
        FailStep,
        ModelStep,
        Pipeline,
        ProcessingStep,
        TrainingStep,
        TransformStep,
        TuningStep,
    )
    from sagemaker.train.model_trainer import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner


def offline_session(*, region: str, default_bucket: str) -> Any:
    """A ``PipelineSession`` that makes no AWS call: explicit region, bucket, config and fake keys.

    Call inside ``sdk_environment()``. The default bucket is set as already resolved, because
    ``Session.default_bucket()`` otherwise checks (and creates) it in S3.
    """
    boto_session = boto3.Session(
        region_name=region, aws_access_key_id=OFFLINE_KEY, aws_secret_access_key=OFFLINE_KEY
    )
    session = PipelineSession(
        boto_session=boto_session, default_bucket=default_bucket, sagemaker_config=TELEMETRY_OFF
    )
    session._default_bucket = default_bucket  # resolved: no HeadBucket/CreateBucket call
    return session


@dataclass(frozen=True)
class _Parameters:
    """The pipeline's parameters as SDK objects, with defaults from the settings."""

    input_uri: Any
    processing_type: Any
    processing_count: Any
    training_type: Any
    training_count: Any
    max_runtime: Any
    transform_type: Any
    transform_count: Any
    auc_threshold: Any
    operating_point: Any
    approval_status: Any

    @classmethod
    def create(cls, settings: PipelineSettings) -> _Parameters:

        ml = settings.ml
        return cls(
            input_uri=ParameterString(names.INPUT_DATA_URI, default_value=settings.default_input_uri),
            processing_type=ParameterString(names.PROCESSING_INSTANCE_TYPE, ml.processing_instance_type),
            processing_count=ParameterInteger(names.PROCESSING_INSTANCE_COUNT, ml.processing_instance_count),
            training_type=ParameterString(names.TRAINING_INSTANCE_TYPE, ml.training.instance_type),
            training_count=ParameterInteger(names.TRAINING_INSTANCE_COUNT, ml.training.instance_count),
            max_runtime=ParameterInteger(names.TRAINING_MAX_RUNTIME, ml.training.max_runtime_seconds),
            transform_type=ParameterString(names.TRANSFORM_INSTANCE_TYPE, ml.transform_instance_type),
            transform_count=ParameterInteger(names.TRANSFORM_INSTANCE_COUNT, ml.transform_instance_count),
            auc_threshold=ParameterFloat(names.AUC_THRESHOLD, ml.auc_threshold),
            operating_point=ParameterString(names.OPERATING_POINT, operating_point_arg(ml.operating_point)),
            # R1: where the stage requires approval, the only value is PendingManualApproval, so no
            # execution can register an approved version (the execution role is conditioned likewise).
            approval_status=ParameterString(
                names.MODEL_APPROVAL_STATUS, ml.approval_status, enum_values=list(ml.registration_statuses)
            ),
        )

    def as_list(self) -> list[Any]:
        return [getattr(self, field) for field in self.__dataclass_fields__]


class _Builder:
    """Holds the session and settings while the step factories run; used once per build."""

    def __init__(self, settings: PipelineSettings, session: Any) -> None:
        self.settings = settings
        self.resources = settings.resources
        self.session = session
        self.params = _Parameters.create(settings)

    # -- shared pieces ----------------------------------------------------------------------
    def s3(self, *parts: Any) -> Any:
        """``s3://<artifacts>/<pipeline>/<execution-id>/<parts...>``: per execution, never shared."""

        return Join(
            on="/",
            values=[
                f"s3://{self.resources.artifacts_bucket}",
                self.resources.pipeline_name,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                *parts,
            ],
        )

    def models_uri(self) -> str:
        # SageMaker appends <training-job-name>/output/model.tar.gz; job names are unique.
        return f"s3://{self.resources.artifacts_bucket}/{self.resources.pipeline_name}/models"

    def processing_network(self) -> Any:

        return NetworkConfig(
            enable_network_isolation=NETWORK_ISOLATION,
            encrypt_inter_container_traffic=INTER_CONTAINER_ENCRYPTION,
            security_group_ids=list(self.resources.security_group_ids),
            subnets=list(self.resources.subnet_ids),
        )

    def processor(
        self, entrypoint: tuple[str, ...], env: dict[str, str] | None = None, *, instance_count: Any = None
    ) -> Any:

        return Processor(
            role=self.resources.role_arn,
            image_uri=self.resources.image_uri,
            instance_count=self.params.processing_count if instance_count is None else instance_count,
            instance_type=self.params.processing_type,
            entrypoint=list(entrypoint),
            volume_kms_key=self.resources.volume_kms_key_arn,
            output_kms_key=self.resources.output_kms_key_arn,
            sagemaker_session=self.session,
            env=env,
            network_config=self.processing_network(),
        )

    def processing_inputs(
        self, sources: dict[str, Any], names: tuple[str, ...], *, sharded: tuple[str, ...] = ()
    ) -> list[Any]:
        """One whole-prefix, File-mode input per name, at the container's input path for it; the
        ``sharded`` ones give each instance its share of the objects (ShardedByS3Key), the others all."""
        return [
            ProcessingInput(
                input_name=name,
                s3_input=ProcessingS3Input(
                    s3_uri=sources[name],
                    local_path=contract.processing_input_path(name),
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                    s3_data_distribution_type=contract.SHARDED if name in sharded else "FullyReplicated",
                ),
            )
            for name in names
        ]

    def processing_outputs(self, step: str, names: tuple[str, ...]) -> list[Any]:
        """One output per name, uploaded at the end of the job under the step's prefix of the execution."""
        return [
            ProcessingOutput(
                output_name=name,
                s3_output=ProcessingS3Output(
                    s3_uri=self.s3(step, name),
                    local_path=contract.processing_output_path(name),
                    s3_upload_mode="EndOfJob",
                ),
            )
            for name in names
        ]

    # -- steps --------------------------------------------------------------------------------
    def preprocessing_arguments(self) -> list[Any]:
        """The three preprocessing jobs take the same arguments, so they cannot disagree on the split."""
        split = self.settings.ml.split
        return [
            "--split",
            f"{split.train:g},{split.validation:g},{split.test:g}",
            "--seed",
            str(split.seed),
            "--standardize",
            "true" if self.settings.ml.standardize else "false",
            "--max-invalid-fraction",
            f"{self.settings.ml.max_invalid_fraction:g}",
            "--train-files",
            # A container argument is a string; Join renders the integer parameter as one.
            Join(on="", values=[self.params.training_count]),
        ]

    def preprocessing(self) -> list[Any]:
        """Profile -> Fit -> Preprocess (``contract.PREPROCESS_PASSES``), each on ProcessingInstanceCount
        instances reading the raw input ShardedByS3Key, each reading the previous job's whole output."""
        steps: list[Any] = []
        for name, (entrypoint, reads, writes) in zip(
            (PROFILE, FIT, PREPROCESS), contract.PREPROCESS_PASSES, strict=True
        ):
            sources = {contract.RAW_INPUT: self.params.input_uri}
            inputs: tuple[str, ...] = (contract.RAW_INPUT,)
            if reads is not None:
                sources[reads] = steps[-1].properties.ProcessingOutputConfig.Outputs[reads].S3Output.S3Uri
                inputs = (contract.RAW_INPUT, reads)
            processor = self.processor(entrypoint, env={DATASET_SCHEMA_ENV: self.settings.dataset.to_json()})
            step_args = processor.run(
                inputs=self.processing_inputs(sources, inputs, sharded=(contract.RAW_INPUT,)),
                outputs=self.processing_outputs(
                    name, (writes,) if writes is not None else tuple(contract.PREPROCESS_OUTPUTS)
                ),
                arguments=self.preprocessing_arguments(),
            )
            steps.append(ProcessingStep(name=name, step_args=step_args))
        return steps

    def model_trainer(self) -> Any:

        training = self.settings.ml.training
        hyperparameters: dict[str, Any] = dict(training.hyperparameters)
        if not self.settings.builtin_image:
            hyperparameters["checkpoint_frequency"] = contract.CHECKPOINT_FREQUENCY
        # StoppingCondition types MaxRuntimeInSeconds as int (and the tuner re-validates it), so the
        # default is rendered here and fixes.apply wires the TrainingMaxRuntimeSeconds parameter in.
        stopping = StoppingCondition(
            max_runtime_in_seconds=training.max_runtime_seconds,
            max_wait_time_in_seconds=training.max_wait_seconds if self.settings.spot else None,
        )
        trainer = ModelTrainer(
            training_image=self.training_image(),
            role=self.resources.role_arn,
            sagemaker_session=self.session,
            base_job_name=f"{self.settings.resources.pipeline_name}-train",
            compute=Compute(
                instance_type=self.params.training_type,
                instance_count=self.params.training_count,
                volume_size_in_gb=training.volume_size_gb,
                volume_kms_key_id=self.resources.volume_kms_key_arn,
                enable_managed_spot_training=self.settings.spot,
            ),
            networking=Networking(
                subnets=list(self.resources.subnet_ids),
                security_group_ids=list(self.resources.security_group_ids),
                enable_network_isolation=NETWORK_ISOLATION,
                enable_inter_container_traffic_encryption=INTER_CONTAINER_ENCRYPTION,
            ),
            stopping_condition=stopping,
            output_data_config=OutputDataConfig(
                s3_output_path=self.models_uri(), kms_key_id=self.resources.output_kms_key_arn
            ),
            checkpoint_config=CheckpointConfig(
                s3_uri=self.s3("checkpoints"), local_path=contract.CHECKPOINT_LOCAL_PATH
            ),
            hyperparameters=hyperparameters,
        )
        if not self.settings.builtin_image:
            # The built-in algorithm defines its own metrics; a custom image must say how to parse them.
            trainer = trainer.with_metric_definitions(
                [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in metrics.METRIC_DEFINITIONS]
            )
        return trainer

    def training_image(self) -> str:
        if not self.settings.builtin_image:
            return self.resources.image_uri

        return str(image_uris.retrieve("xgboost", self.settings.region, version=BUILTIN_XGBOOST_VERSION))

    def training_description(self) -> str | None:
        """The T6 acknowledgement the perimeter check reads, when the stage trains on the built-in image."""
        reason = self.settings.ml.training.image_exception_reason
        if self.settings.builtin_image and reason:
            return acknowledgement_line("T6", reason)
        return None

    def training_inputs(self, preprocess: Any) -> list[Any]:

        outputs = preprocess.properties.ProcessingOutputConfig.Outputs
        channels = [
            InputData(
                channel_name=name,
                data_source=outputs[name].S3Output.S3Uri,
                content_type=contract.TRAIN_CONTENT_TYPE,
            )
            for name in contract.TRAIN_CHANNELS
        ]
        if not self.settings.builtin_image:
            # The project image packs the fitted preprocessor into model.tar.gz for serving.
            channels.append(
                InputData(
                    channel_name=contract.PREPROCESSOR_CHANNEL,
                    data_source=outputs[contract.PREPROCESSOR_CHANNEL].S3Output.S3Uri,
                )
            )
        return channels

    def train(self, preprocess: Any) -> tuple[Any, Any]:
        """The Train step and the S3 URI of its model.tar.gz."""

        with config_lookups_off(self.session):
            trainer = self.model_trainer()
            inputs = self.training_inputs(preprocess)
        # ModelTrainer.train emits SDK telemetry unless the session's config opts out: keep it visible.
        step_args = trainer.train(input_data_config=inputs)
        with config_lookups_off(self.session):
            step = TrainingStep(name=TRAIN, step_args=step_args, description=self.training_description())
        return step, step.properties.ModelArtifacts.S3ModelArtifacts

    def tune(self, preprocess: Any) -> tuple[Any, Any]:
        """The Tune step and the S3 URI of its best training job's model.tar.gz."""

        tuning = self.settings.ml.tuning
        kinds = {"Integer": IntegerParameter, "Continuous": ContinuousParameter}
        ranges = {
            name: kinds[kind](low, high, scaling_type=scaling)
            for name, (kind, low, high, scaling) in TUNING_RANGES.items()
        }
        tuner = HyperparameterTuner(
            model_trainer=self.model_trainer(),
            objective_metric_name=metrics.OBJECTIVE_METRIC,
            objective_type="Maximize",
            hyperparameter_ranges=ranges,
            metric_definitions=None if self.settings.builtin_image else list(metrics.METRIC_DEFINITIONS),
            strategy=tuning.strategy,
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            base_tuning_job_name=f"{self.settings.stage_name}-tune",
        )
        step_args = tuner.tune(inputs=self.training_inputs(preprocess))
        step = TuningStep(name=TUNE, step_args=step_args, description=self.training_description())
        best = Join(
            on="/",
            values=[
                self.models_uri(),
                step.properties.BestTrainingJob.TrainingJobName,
                "output",
                MODEL_ARCHIVE,
            ],
        )
        return step, best

    def evaluate(self, preprocess: Any, model_uri: Any) -> tuple[Any, Any]:
        """The Evaluate step and its evaluation.json property file."""

        outputs = preprocess.properties.ProcessingOutputConfig.Outputs
        sources = {
            "model": model_uri,
            "test": outputs["test"].S3Output.S3Uri,
            "validation": outputs["validation"].S3Output.S3Uri,
        }
        report = PropertyFile(
            name=contract.EVALUATION_PROPERTY_FILE,
            output_name=contract.EVALUATION_OUTPUT,
            path=evaluation.EVALUATION_FILE,
        )
        # One instance: the test metrics and the threshold are computed over the whole split.
        step_args = self.processor(contract.EVALUATE_ENTRYPOINT, instance_count=1).run(
            inputs=self.processing_inputs(sources, tuple(contract.EVALUATE_INPUTS)),
            outputs=self.processing_outputs(EVALUATE, (contract.EVALUATION_OUTPUT,)),
            arguments=[
                "--operating-point",
                self.params.operating_point,
                "--confidence",
                f"{self.settings.ml.operating_point.confidence:g}",
            ],
        )
        step = ProcessingStep(name=EVALUATE, step_args=step_args, property_files=[report])
        return step, report

    def baseline(self, preprocess: Any, evaluate: Any) -> Any:
        """The Baseline step: data-quality and model-quality baselines for the model being registered."""

        sources = {
            contract.TRAINING_RECORDS: preprocess.properties.ProcessingOutputConfig.Outputs[
                contract.TRAINING_RECORDS
            ].S3Output.S3Uri,
            contract.EVALUATION_OUTPUT: evaluate.properties.ProcessingOutputConfig.Outputs[
                contract.EVALUATION_OUTPUT
            ].S3Output.S3Uri,
        }
        monitoring = self.settings.monitoring
        thresholds = {"drift": monitoring.drift.model_dump(), "quality": monitoring.quality.model_dump()}
        # One instance: the baseline profiles the whole training split (several would each do all of it).
        processor = self.processor(
            mon.BASELINE_ENTRYPOINT,
            env={DATASET_SCHEMA_ENV: self.settings.dataset.to_json()},
            instance_count=1,
        )
        step_args = processor.run(
            inputs=self.processing_inputs(sources, tuple(contract.BASELINE_INPUTS)),
            outputs=self.processing_outputs(BASELINE, (contract.BASELINE_OUTPUT,)),
            arguments=["--thresholds", json.dumps(thresholds, sort_keys=True)],
        )
        return ProcessingStep(name=BASELINE, step_args=step_args)

    def baseline_metrics(self, baseline: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(ModelMetrics, DriftCheckBaselines) of the package: the baseline travels with the model."""
        root = baseline.properties.ProcessingOutputConfig.Outputs[contract.BASELINE_OUTPUT].S3Output.S3Uri

        def file(kind: str, name: str) -> dict[str, Any]:
            return {
                "ContentType": "application/json",
                "S3Uri": Join(on="/", values=[root, mon.baseline_file(kind, name)]),
            }

        def pair(kind: str) -> dict[str, Any]:
            return {
                "Statistics": file(kind, mon.STATISTICS_FILE),
                "Constraints": file(kind, mon.CONSTRAINTS_FILE),
            }

        sections = {"ModelDataQuality": pair(mon.DATA_QUALITY), "ModelQuality": pair(mon.MODEL_QUALITY)}
        return sections, {key: dict(value) for key, value in sections.items()}

    def container(self, model_uri: Any, evaluate: Any, report: Any) -> dict[str, Any]:
        """The serving container, identical in the registered package and the batch model."""

        threshold = JsonGet(
            step_name=evaluate.name, property_file=report, json_path=evaluation.THRESHOLD_PATH
        )
        return {
            "Image": self.resources.image_uri,
            "ModelDataUrl": model_uri,
            # Environment values are strings: Join turns the JSON number into one.
            "Environment": {DECISION_THRESHOLD_ENV: Join(on="", values=[threshold])},
        }

    def model_step_args(self, create: Callable[[], object]) -> Any:
        """Capture a CreateModel/CreateModelPackage request the way ``ModelBuilder`` does.

        ``ModelBuilder.build()/register()`` would add script-mode variables, emit telemetry and
        cost seconds of SDK-config lookups; the session calls below are what they end in.
        """
        self.session.init_model_step_arguments(_ServingModel(self.session))
        create()
        step_args, self.session.context = self.session.context, None
        return step_args

    def register(self, baseline: Any, container: dict[str, Any]) -> Any:

        model_metrics, drift_check_baselines = self.baseline_metrics(baseline)
        instance_types = list(self.settings.ml.inference_instance_types)
        step_args = self.model_step_args(
            lambda: create_model_package_from_containers(
                self.session,
                containers=[dict(container)],
                content_types=list(contract.INFERENCE_CONTENT_TYPES),
                response_types=list(contract.INFERENCE_RESPONSE_TYPES),
                inference_instances=instance_types,
                transform_instances=[self.settings.ml.transform_instance_type],
                model_package_group_name=self.resources.model_package_group_name,
                approval_status=self.params.approval_status,
                model_metrics=model_metrics,
                drift_check_baselines=drift_check_baselines,
            )
        )
        return ModelStep(name=REGISTER, step_args=step_args)

    def create_model(self, container: dict[str, Any], register: Any) -> Any:

        step_args = self.model_step_args(
            lambda: self.session.create_model(
                # The pipeline names the model at run time; this name is dropped from the definition.
                name=f"{self.resources.pipeline_name}-model",
                role=self.resources.role_arn,
                container_defs=dict(container),
                vpc_config={
                    "Subnets": list(self.resources.subnet_ids),
                    "SecurityGroupIds": list(self.resources.security_group_ids),
                },
                enable_network_isolation=NETWORK_ISOLATION,
            )
        )
        # After Register: a model is created only for a version that made it into the registry.
        return ModelStep(name=CREATE_MODEL, step_args=step_args, depends_on=[register])

    def batch_transform(self, preprocess: Any, model: Any) -> Any:

        transformer = Transformer(
            model_name=model.properties.ModelName,
            # TransformResources types InstanceCount as int: fixes.apply wires the parameter in.
            instance_count=self.settings.ml.transform_instance_count,
            instance_type=self.params.transform_type,
            strategy="MultiRecord",
            assemble_with="Line",
            accept=contract.TRANSFORM_CONTENT_TYPE,
            output_path=self.s3(BATCH_TRANSFORM),
            output_kms_key=self.resources.output_kms_key_arn,
            volume_kms_key=self.resources.volume_kms_key_arn,
            sagemaker_session=self.session,
        )
        outputs = preprocess.properties.ProcessingOutputConfig.Outputs
        step_args = transformer.transform(
            data=outputs[contract.TRANSFORM_INPUT].S3Output.S3Uri,
            content_type=contract.TRANSFORM_CONTENT_TYPE,
            split_type="Line",
        )
        return TransformStep(name=BATCH_TRANSFORM, step_args=step_args)

    def gate(self, evaluate: Any, report: Any, on_pass: list[Any]) -> Any:

        def value(path: str) -> Any:
            return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)

        message = Join(
            on="",
            values=[
                "Model gate failed on the test split: auc = ",
                value(evaluation.AUC_PATH),
                " (bar: at least ",
                self.params.auc_threshold,
                "); operating point ",
                value(evaluation.OPERATING_POINT_METRIC_PATH),
                " = ",
                value(evaluation.OPERATING_POINT_VALUE_PATH),
                " (bar: ",
                value(evaluation.OPERATING_POINT_BAR_PATH),
                ", met = ",
                value(evaluation.OPERATING_POINT_MET_PATH),
                "). Nothing was registered.",
            ],
        )
        return ConditionStep(
            name=GATE,
            conditions=[
                ConditionGreaterThanOrEqualTo(
                    left=value(evaluation.AUC_PATH), right=self.params.auc_threshold
                ),
                ConditionEquals(left=value(evaluation.OPERATING_POINT_MET_PATH), right=1),
            ],
            if_steps=on_pass,
            else_steps=[FailStep(name=FAIL, error_message=message)],
        )

    def pipeline(self) -> Pipeline:

        with config_lookups_off(self.session):
            *profile_and_fit, preprocess = self.preprocessing()
        if self.settings.tune:
            with config_lookups_off(self.session):  # HyperparameterTuner.tune emits no telemetry
                training, model_uri = self.tune(preprocess)
        else:
            training, model_uri = self.train(preprocess)
        with config_lookups_off(self.session):
            evaluate, report = self.evaluate(preprocess, model_uri)
            container = self.container(model_uri, evaluate, report)
            baseline = self.baseline(preprocess, evaluate)
            register = self.register(baseline, container)
            model = self.create_model(container, register)
            transform = self.batch_transform(preprocess, model)
            gate = self.gate(evaluate, report, on_pass=[baseline, register, model, transform])
        return Pipeline(
            name=self.resources.pipeline_name,
            parameters=self.params.as_list(),
            steps=[*profile_and_fit, preprocess, training, evaluate, gate],
            sagemaker_session=self.session,
            # No experiment tracking: it needs extra permissions and is not part of the perimeter.
            pipeline_experiment_config=None,
        )


@dataclass(frozen=True)
class _ServingModel:
    """The "model" ``PipelineSession`` records for a ModelStep; the SDK reads only its session."""

    sagemaker_session: Any


def build_pipeline(settings: PipelineSettings) -> Pipeline:
    """The SDK v3 pipeline for ``settings``. No AWS call."""
    with sdk_environment(settings.region):
        quiet_sdk_logging()
        session = offline_session(region=settings.region, default_bucket=settings.resources.artifacts_bucket)
        return _Builder(settings, session).pipeline()


def render_definition(settings: PipelineSettings) -> dict[str, Any]:
    """The JSON-ready definition after rookery's fixes (see ``pipelines.fixes``)."""
    pipeline = build_pipeline(settings)
    with sdk_environment(settings.region), config_lookups_off(pipeline.sagemaker_session):
        raw = json.loads(pipeline.definition())
    return fixes.apply(raw, settings)


def render_json(settings: PipelineSettings) -> str:
    """The definition as the exact string CDK embeds and the CLI upserts (stable key order)."""
    return json.dumps(render_definition(settings), indent=2, sort_keys=False) + "\n"
