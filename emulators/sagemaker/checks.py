"""Everything the local engine refuses, checked before any step starts.

``check_definition`` first holds every key of the definition and of each step against an
allowlist (``DEFINITION_KEYS``, ``STEP_KEYS``: each key with the reason it is accepted, noted or
refused; anything unlisted is refused). It then walks every step: its type, each ``Get``
(parameters, execution variables, step properties against the step type's Describe* shape,
property files), every function, the images and entrypoints, LocalPaths (must be under
``/opt/ml``), S3 URIs (must be ``s3://``) and the options the engine cannot honour. Fields that
hold expressions are checked with the execution's parameter values; those that depend on other
steps are checked again when the step runs. Each refusal raises :class:`UnsupportedDefinition`
naming the step and the field. What is accepted but done differently than on SageMaker comes back
as a :class:`Note`, which the execution records: nothing is skipped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from emulators.core.errors import LocalEngineError, UnsupportedDefinition
from emulators.core.home import split_s3_uri
from emulators.core.images import ImageError, ImageMap
from emulators.sagemaker.expressions import CONDITION_TYPES, ExpressionError, Scope
from emulators.sagemaker.records import Note
from pipelines.definition import iter_steps, own_arguments
from pipelines.reading import PIPELINE, Problem
from pipelines.reading.graph import dependency_problems, step_name_problems
from pipelines.reading.paths import tokens
from pipelines.reading.references import reference_problems, walk_expressions
from pipelines.reading.variables import EXECUTION_VARIABLES, parameter_problems

SUPPORTED_STEPS: Final = (
    "Processing",
    "Training",
    "Tuning",
    "Condition",
    "Fail",
    "RegisterModel",
    "Model",
    "Transform",
)
OPT_ML: Final = "/opt/ml"
DEFINITION_VERSION: Final = "2020-12-01"  # the definition format the SageMaker SDK writes
# A value of each pipeline parameter type, for resolving expressions before anything runs.
_PLACEHOLDERS: Final = {"String": "x", "Integer": 1, "Float": 1.0, "Boolean": True}
_SCALINGS: Final = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


class _Deferred(Exception):  # noqa: N818 - control flow: the value depends on a step not yet run
    pass


def _static_scope(parameters: Mapping[str, Any]) -> Scope:
    def deferred(*_: Any) -> Any:
        raise _Deferred

    execution = {name: _PLACEHOLDERS[v.value_type] for name, v in EXECUTION_VARIABLES.items()}
    return Scope(parameters, execution, deferred, deferred)


class _StepChecker:
    def __init__(self, step: Mapping[str, Any], images: ImageMap, scope: Scope) -> None:
        self.step = step
        self.name = str(step.get("Name"))
        self.args: Mapping[str, Any] = step.get("Arguments") or {}
        self.images = images
        self.scope = scope

    def refuse(self, field: str, problem: str) -> UnsupportedDefinition:
        return UnsupportedDefinition(self.name, field, problem)

    def value(self, path: str, *, required: bool = False) -> Any:
        """``Arguments.<path>`` resolved with the parameters; None when it depends on a step."""
        current = self.raw(path)
        if current is None:
            if required:
                raise self.refuse(f"Arguments.{path}", "is required")
            return None
        try:
            return self.scope.resolve(current)
        except _Deferred:
            return None
        except ExpressionError as exc:
            raise self.refuse(f"Arguments.{path}", str(exc)) from None

    def one_of(self, path: str, allowed: tuple[str | None, ...], why: str) -> None:
        value = self.value(path)
        if value not in allowed:
            shown = [a for a in allowed if a is not None]
            raise self.refuse(f"Arguments.{path}", f"{value!r} is not supported locally ({why}); use {shown}")

    def raw(self, path: str) -> Any:
        """The unresolved field at ``Arguments.<path>`` (``A.B[0].C``), None when absent."""
        current: Any = self.args
        for part in tokens(path):
            if isinstance(part, int):
                current = current[part] if isinstance(current, list) and part < len(current) else None
            else:
                key = part if isinstance(part, str) else part[0]
                current = current.get(key) if isinstance(current, Mapping) else None
        return current

    def absent(self, path: str, why: str) -> None:
        current = self.raw(path)
        if current not in (None, [], {}):
            raise self.refuse(f"Arguments.{path}", f"is not supported by the local engine ({why}); remove it")

    def s3(self, path: str, *, required: bool = True) -> None:
        value = self.value(path, required=required)
        if value is None:
            return
        if not isinstance(value, str):
            raise self.refuse(f"Arguments.{path}", f"{value!r} is not an S3 URI string")
        try:
            split_s3_uri(value)
        except LocalEngineError as exc:
            raise self.refuse(f"Arguments.{path}", str(exc)) from None

    def local_path(self, path: str, *, required: bool = True) -> None:
        value = self.value(path, required=required)
        if value is None:
            return
        text = str(value)
        parts = text.split("/")
        if not (text == OPT_ML or text.startswith(OPT_ML + "/")) or ".." in parts:
            raise self.refuse(
                f"Arguments.{path}",
                f"{text!r} is outside {OPT_ML}; the local engine maps only {OPT_ML}/... into a job's sandbox",
            )

    def image(self, path: str, entry_path: str | None, *, default: str) -> None:
        image = self.value(path, required=True)
        entry = self.value(entry_path) if entry_path else None
        try:
            self.images.program(image)
        except ImageError as exc:
            raise self.refuse(f"Arguments.{path}", str(exc)) from None
        try:
            self.images.command(image, entry, default=default)
        except ImageError as exc:
            field = f"Arguments.{entry_path}" if entry is not None and entry_path else f"Arguments.{path}"
            raise self.refuse(field, str(exc)) from None

    def single_instance(self, path: str) -> None:
        count = self.value(path)
        if count is not None and count != 1:
            raise self.refuse(
                f"Arguments.{path}",
                f"{count} instances: the local engine runs one instance per job; set the count to 1 "
                "(e.g. --param ...InstanceCount=1)",
            )

    # -- per step type ---------------------------------------------------------------------------
    def processing(self) -> None:
        self.image("AppSpecification.ImageUri", "AppSpecification.ContainerEntrypoint", default="")
        if not self.raw("AppSpecification.ContainerEntrypoint"):
            raise self.refuse(
                "Arguments.AppSpecification.ContainerEntrypoint",
                "is required locally (['python3', '/opt/program/<script>.py'])",
            )
        self.single_instance("ProcessingResources.ClusterConfig.InstanceCount")
        for i, item in enumerate(self.args.get("ProcessingInputs", []) or []):
            base = f"ProcessingInputs[{i}].S3Input"
            if "S3Input" not in item:
                raise self.refuse(f"Arguments.ProcessingInputs[{i}]", "only S3Input is supported locally")
            self.s3(f"{base}.S3Uri")
            self.local_path(f"{base}.LocalPath")
            self.one_of(f"{base}.S3DataType", ("S3Prefix", "S3Object"), "a manifest is not read locally")
            self.one_of(f"{base}.S3InputMode", ("File", None), "Pipe mode streams; the engine stages files")
            self.one_of(f"{base}.S3CompressionType", ("None", None), "inputs are staged as stored")
        names = set()
        for i, item in enumerate(self.raw("ProcessingOutputConfig.Outputs") or []):
            base = f"ProcessingOutputConfig.Outputs[{i}]"
            if "S3Output" not in item:
                raise self.refuse(f"Arguments.{base}", "only S3Output is supported locally")
            names.add(item.get("OutputName"))
            self.s3(f"{base}.S3Output.S3Uri")
            self.local_path(f"{base}.S3Output.LocalPath")
        for i, prop in enumerate(self.step.get("PropertyFiles", []) or []):
            if prop.get("OutputName") not in names:
                raise UnsupportedDefinition(
                    self.name,
                    f"PropertyFiles[{i}].OutputName",
                    f"{prop.get('OutputName')!r} is not one of the step's outputs {sorted(map(str, names))}",
                )
            file_path = str(prop.get("FilePath", ""))
            if not file_path or file_path.startswith("/") or ".." in file_path.split("/"):
                raise UnsupportedDefinition(
                    self.name,
                    f"PropertyFiles[{i}].FilePath",
                    f"{file_path!r} must be a path inside the output",
                )

    def training_definition(self, prefix: str) -> None:
        p = f"{prefix}." if prefix else ""
        spec = self.args.get(prefix, {}) if prefix else self.args
        algorithm = spec.get("AlgorithmSpecification", {}) or {}
        if algorithm.get("AlgorithmName"):
            raise self.refuse(
                f"Arguments.{p}AlgorithmSpecification.AlgorithmName",
                "marketplace algorithms cannot run locally; use the project image (TrainingImage)",
            )
        self.image(
            f"{p}AlgorithmSpecification.TrainingImage",
            f"{p}AlgorithmSpecification.ContainerEntrypoint",
            default="train",
        )
        mode = algorithm.get("TrainingInputMode", "File")
        if mode not in ("File", "FastFile"):
            raise self.refuse(
                f"Arguments.{p}AlgorithmSpecification.TrainingInputMode",
                f"{mode!r} is not supported locally (channels are staged as files); use File",
            )
        for i, metric in enumerate(algorithm.get("MetricDefinitions", []) or []):
            try:
                re.compile(str(metric.get("Regex", "")))
            except re.error as exc:
                raise self.refuse(
                    f"Arguments.{p}AlgorithmSpecification.MetricDefinitions[{i}].Regex", str(exc)
                ) from None
        self.single_instance(f"{p}ResourceConfig.InstanceCount")
        self.absent(f"{p}ResourceConfig.InstanceGroups", "heterogeneous clusters need several instances")
        for i, channel in enumerate(spec.get("InputDataConfig", []) or []):
            base = f"{p}InputDataConfig[{i}]"
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if source is None:
                raise self.refuse(
                    f"Arguments.{base}.DataSource", "only S3DataSource channels are supported locally"
                )
            self.s3(f"{base}.DataSource.S3DataSource.S3Uri")
            for key, value, allowed in (
                ("DataSource.S3DataSource.S3DataType", source.get("S3DataType"), ("S3Prefix", "S3Object")),
                ("CompressionType", channel.get("CompressionType"), (None, "None")),
                ("RecordWrapperType", channel.get("RecordWrapperType"), (None, "None")),
                ("InputMode", channel.get("InputMode"), (None, "File", "FastFile")),
            ):
                if value not in allowed:
                    raise self.refuse(
                        f"Arguments.{base}.{key}",
                        f"{value!r} is not supported locally; use one of {[a for a in allowed if a]}",
                    )
        self.s3(f"{p}OutputDataConfig.S3OutputPath")
        if spec.get("CheckpointConfig"):
            self.s3(f"{p}CheckpointConfig.S3Uri")
            self.local_path(f"{p}CheckpointConfig.LocalPath", required=False)
        for key in ("DebugRuleConfigurations", "ProfilerRuleConfigurations"):
            self.absent(f"{p}{key}", "Debugger rules run as separate processing jobs")

    def training(self) -> None:
        self.training_definition("")

    def tuning(self) -> None:
        self.absent("TrainingJobDefinitions", "one training job definition per tuning step locally")
        self.absent("WarmStartConfig", "there are no parent tuning jobs locally")
        if "TrainingJobDefinition" not in self.args:
            raise self.refuse("Arguments.TrainingJobDefinition", "is required")
        self.training_definition("TrainingJobDefinition")
        config = self.args.get("HyperParameterTuningJobConfig") or {}
        base = "Arguments.HyperParameterTuningJobConfig"
        limits = config.get("ResourceLimits") or {}
        for key in ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs"):
            value = self.scope.resolve(limits.get(key)) if key in limits else None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise self.refuse(
                    f"{base}.ResourceLimits.{key}", f"{value!r}: a positive whole number is required"
                )
        early = config.get("TrainingJobEarlyStoppingType", "Off")
        if early != "Off":
            raise self.refuse(
                f"{base}.TrainingJobEarlyStoppingType",
                f"{early!r}: early stopping of trials is not emulated; use Off",
            )
        completion = config.get("TuningJobCompletionCriteria") or {}
        extra = sorted(set(completion) - {"TargetObjectiveMetricValue"})
        if extra:
            raise self.refuse(
                f"{base}.TuningJobCompletionCriteria.{extra[0]}",
                "only TargetObjectiveMetricValue is supported locally",
            )
        objective = config.get("HyperParameterTuningJobObjective") or {}
        if objective.get("Type") not in ("Maximize", "Minimize"):
            raise self.refuse(f"{base}.HyperParameterTuningJobObjective.Type", "must be Maximize or Minimize")
        metrics = [
            m.get("Name")
            for m in self.args["TrainingJobDefinition"]
            .get("AlgorithmSpecification", {})
            .get("MetricDefinitions", [])
        ]
        if objective.get("MetricName") not in metrics:
            raise self.refuse(
                f"{base}.HyperParameterTuningJobObjective.MetricName",
                f"{objective.get('MetricName')!r} is not one of the job's MetricDefinitions {metrics}",
            )
        static = self.args["TrainingJobDefinition"].get("StaticHyperParameters", {}) or {}
        ranges = config.get("ParameterRanges") or {}
        count = 0
        for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"):
            for i, spec in enumerate(ranges.get(kind, []) or []):
                count += 1
                field = f"{base}.ParameterRanges.{kind}[{i}]"
                name = spec.get("Name")
                if name in static:
                    raise self.refuse(field, f"{name!r} is both tuned and a static hyperparameter; keep one")
                if kind == "CategoricalParameterRanges":
                    if not spec.get("Values"):
                        raise self.refuse(f"{field}.Values", "needs at least one value")
                    continue
                self._range(field, spec, integer=kind == "IntegerParameterRanges")
        if count == 0:
            raise self.refuse(f"{base}.ParameterRanges", "declares no ranges to tune")

    def _range(self, field: str, spec: Mapping[str, Any], *, integer: bool) -> None:
        try:
            low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        except (KeyError, TypeError, ValueError):
            raise self.refuse(field, "MinValue and MaxValue must be numbers (as strings)") from None
        if integer and (low != int(low) or high != int(high)):
            raise self.refuse(field, "an integer range needs whole MinValue and MaxValue")
        if low > high:
            raise self.refuse(field, f"MinValue {low:g} exceeds MaxValue {high:g}")
        scaling = spec.get("ScalingType", "Auto")
        if scaling not in _SCALINGS:
            raise self.refuse(f"{field}.ScalingType", f"{scaling!r}; use one of {list(_SCALINGS)}")
        if scaling == "Logarithmic" and low <= 0:
            raise self.refuse(f"{field}.ScalingType", "Logarithmic scaling needs MinValue > 0")
        if scaling == "ReverseLogarithmic" and (integer or high >= 1 or low < 0):
            raise self.refuse(
                f"{field}.ScalingType", "ReverseLogarithmic scaling needs a continuous range within [0, 1)"
            )

    def model(self) -> None:
        self.absent("Containers", "inference pipelines of several containers are not served locally")
        if "PrimaryContainer" not in self.args:
            raise self.refuse("Arguments.PrimaryContainer", "is required")
        self.image("PrimaryContainer.Image", None, default="serve")
        self.s3("PrimaryContainer.ModelDataUrl")
        mode = self.args["PrimaryContainer"].get("Mode", "SingleModel")
        if mode != "SingleModel":
            raise self.refuse(
                "Arguments.PrimaryContainer.Mode", f"{mode!r}; only SingleModel is served locally"
            )

    def register_model(self) -> None:
        if not self.args.get("ModelPackageGroupName"):
            raise self.refuse(
                "Arguments.ModelPackageGroupName",
                "is required (unversioned packages are not registered locally)",
            )
        self.absent("SourceAlgorithmSpecification", "marketplace algorithms cannot run locally")
        containers = (self.args.get("InferenceSpecification") or {}).get("Containers") or []
        if len(containers) != 1:
            raise self.refuse(
                "Arguments.InferenceSpecification.Containers",
                f"{len(containers)} containers: the local registry serves exactly one",
            )
        self.image("InferenceSpecification.Containers[0].Image", None, default="serve")
        self.s3("InferenceSpecification.Containers[0].ModelDataUrl")
        status = self.value("ModelApprovalStatus")
        if status is not None and status not in ("Approved", "PendingManualApproval", "Rejected"):
            raise self.refuse("Arguments.ModelApprovalStatus", f"{status!r} is not an approval status")
        for section, entries in (self.args.get("ModelMetrics") or {}).items():
            for kind, entry in (entries or {}).items():
                if isinstance(entry, Mapping) and "S3Uri" in entry:
                    self.s3(f"ModelMetrics.{section}.{kind}.S3Uri")

    def transform(self) -> None:
        if not self.args.get("ModelName"):
            raise self.refuse("Arguments.ModelName", "is required")
        source = ((self.args.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource")
        if source is None:
            raise self.refuse("Arguments.TransformInput.DataSource", "only S3DataSource is supported locally")
        self.s3("TransformInput.DataSource.S3DataSource.S3Uri")
        for path, allowed in (
            ("TransformInput.DataSource.S3DataSource.S3DataType", ("S3Prefix", "S3Object")),
            ("TransformInput.SplitType", (None, "None", "Line")),
            ("TransformInput.CompressionType", (None, "None")),
            ("TransformOutput.AssembleWith", (None, "None", "Line")),
            ("BatchStrategy", (None, "MultiRecord", "SingleRecord")),
        ):
            self.one_of(path, allowed, "the local engine implements these")
        self.s3("TransformOutput.S3OutputPath")
        processing = self.args.get("DataProcessing") or {}
        defaults = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
        for key, value in processing.items():
            if defaults.get(key) != value:
                raise self.refuse(
                    f"Arguments.DataProcessing.{key}", f"{value!r}; only the defaults are supported locally"
                )

    def condition(self) -> None:
        conditions = self.args.get("Conditions")
        if not isinstance(conditions, list) or not conditions:
            raise self.refuse("Arguments.Conditions", "a Condition step needs a list of conditions")
        for i, spec in enumerate(conditions):
            self._condition(spec, f"Arguments.Conditions[{i}]")

    def _condition(self, spec: Any, field: str) -> None:
        kind = spec.get("Type") if isinstance(spec, Mapping) else None
        if kind not in CONDITION_TYPES:
            raise self.refuse(
                f"{field}.Type", f"{kind!r} is not a condition type; use one of {list(CONDITION_TYPES)}"
            )
        if kind == "Not":
            self._condition(spec.get("Expression"), f"{field}.Expression")
        elif kind == "Or":
            for i, inner in enumerate(spec.get("Conditions", [])):
                self._condition(inner, f"{field}.Conditions[{i}]")
        elif kind == "In":
            if "QueryValue" not in spec or not isinstance(spec.get("Values"), list):
                raise self.refuse(field, "an In condition needs QueryValue and a list of Values")
        elif "LeftValue" not in spec or "RightValue" not in spec:
            raise self.refuse(field, f"a {kind} condition needs LeftValue and RightValue")

    def fail(self) -> None:
        pass


_CHECKS: Final[dict[str, Callable[[_StepChecker], None]]] = {
    "Processing": _StepChecker.processing,
    "Training": _StepChecker.training,
    "Tuning": _StepChecker.tuning,
    "Model": _StepChecker.model,
    "RegisterModel": _StepChecker.register_model,
    "Transform": _StepChecker.transform,
    "Condition": _StepChecker.condition,
    "Fail": _StepChecker.fail,
}


# -- the keys a definition and its steps may hold ------------------------------------------------
class _Refused(Exception):  # noqa: N818 - control flow: carries the problem text to the caller
    pass


# A key's rule: None when the engine runs it as SageMaker would, the note a run records when it
# does something differently, or _Refused(problem and fix) when it cannot honour it at all.
KeyRule = Callable[[Mapping[str, Any], Any], str | None]


def _as_on_sagemaker(_: Mapping[str, Any], __: Any) -> None:
    return None


def _version(_: Mapping[str, Any], value: Any) -> None:
    if value != DEFINITION_VERSION:
        raise _Refused(
            f"{value!r}: the local engine reads definition format {DEFINITION_VERSION} (what the "
            "SageMaker SDK writes); render the definition with the project's SDK"
        )


def _records_lineage(where: str) -> KeyRule:
    def rule(_: Mapping[str, Any], value: Any) -> str | None:
        if value in (None, {}):
            return None  # the SDK writes null when none is configured: nothing to record anywhere
        shown = json.dumps(value, separators=(",", ":"))
        return (
            f"SageMaker records lineage under {shown} in {where}; that changes nothing that runs, and "
            "a local run records nothing there (its record is its execution folder)"
        )

    return rule


def _cache_config(_: Mapping[str, Any], value: Any) -> str | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("Enabled"), bool):
        raise _Refused(f"{value!r}: write {{'Enabled': true|false, 'ExpireAfter': '<ISO 8601 duration>'}}")
    extra = sorted(set(value) - {"Enabled", "ExpireAfter"})
    if extra:
        raise _Refused(f"{extra[0]!r} is not a CacheConfig field (Enabled, ExpireAfter); remove it")
    if not value["Enabled"]:
        return None  # caching off: SageMaker runs the step every time, as a local run does
    expiry = value.get("ExpireAfter")
    return (
        f"step caching is on{f' (ExpireAfter {expiry})' if expiry else ''}: SageMaker may reuse an earlier "
        "run's results; a local run always computes the step, which is what SageMaker does on a cache miss"
    )


def _retry_policies(_: Mapping[str, Any], value: Any) -> None:
    if value in (None, []):
        return  # no policy: the step runs once, as locally
    raise _Refused(
        "retry policies change what a run does when the step fails, and the local engine runs every "
        "step once; remove RetryPolicies from the step, or run the pipeline on SageMaker "
        "(rookery pipeline start)"
    )


def _property_files(step: Mapping[str, Any], value: Any) -> None:
    if value not in (None, []) and step.get("Type") != "Processing":
        raise _Refused(
            f"only Processing steps have property files (the engine reads them from processing "
            f"outputs), not {step.get('Type')} steps; read this step's properties with a Get"
        )


# Top-level keys of a definition, each with why the engine accepts it; any other key is refused.
DEFINITION_KEYS: Final[Mapping[str, KeyRule]] = {
    # The format version: the engine reads the one the SDK writes; another may mean other semantics.
    "Version": _version,
    # Free-form data SageMaker stores with the pipeline; no step and no service behaviour reads it.
    "Metadata": _as_on_sagemaker,
    # What the engine runs; each parameter and each step is checked below.
    "Parameters": _as_on_sagemaker,
    "Steps": _as_on_sagemaker,
    # The experiment and trial SageMaker records the execution's lineage under: a record, not a
    # behaviour. Accepted, and noted in the execution's record.
    "PipelineExperimentConfig": _records_lineage("SageMaker Experiments"),
    # The MLflow experiment SageMaker logs the execution to: likewise a record only; noted.
    "MlflowConfig": _records_lineage("MLflow"),
}

# Keys of a step (beside its Arguments), each with why; any other key is refused.
STEP_KEYS: Final[Mapping[str, KeyRule]] = {
    # What runs, and after what: checked step by step below.
    "Name": _as_on_sagemaker,
    "Type": _as_on_sagemaker,
    "Arguments": _as_on_sagemaker,
    "DependsOn": _as_on_sagemaker,
    # Labels Studio shows; nothing runs differently for them.
    "DisplayName": _as_on_sagemaker,
    "Description": _as_on_sagemaker,
    # JSON files a Processing step's outputs hold, read by Std:JsonGet; checked with the step.
    "PropertyFiles": _property_files,
    # A local run always computes the step: SageMaker's behaviour on a cache miss, so the run is
    # one SageMaker could make. Accepted; when caching is on, the run notes it never reuses results.
    "CacheConfig": _cache_config,
    # Retries change what a run does when a step fails; the engine does not retry, so a run could
    # fail where SageMaker would go on. Refused.
    "RetryPolicies": _retry_policies,
    # Where SageMaker records the step's trial component: a record, not a behaviour. Accepted, noted.
    # (The SDK writes it into a job's request, Arguments.ExperimentConfig, checked by the same rule.)
    "ExperimentConfig": _records_lineage("SageMaker Experiments"),
}
# Fields of a job's request (inside Arguments) that only say where SageMaker records the job.
_ARGUMENT_RECORD_KEYS: Final = ("ExperimentConfig",)


def _apply(
    rules: Mapping[str, KeyRule], where: Mapping[str, Any], step: str, prefix: str, level: str
) -> list[Note]:
    notes = []
    for key, value in where.items():
        rule = rules.get(key)
        if rule is None:
            raise UnsupportedDefinition(
                step,
                f"{prefix}{key}",
                f"is not a {level} key the local engine knows (it knows: {', '.join(rules)}); remove "
                "it, or, if SageMaker honours it, run the pipeline there (rookery pipeline start)",
            )
        try:
            note = rule(where, value)
        except _Refused as exc:
            raise UnsupportedDefinition(step, f"{prefix}{key}", str(exc)) from None
        if note is not None:
            notes.append(Note(step, f"{prefix}{key}", note))
    return notes


def check_keys(definition: Mapping[str, Any]) -> list[Note]:
    """Every key of the definition and of each step is on its allowlist; the notes a run records."""
    notes = _apply(DEFINITION_KEYS, definition, PIPELINE, "", "definition")
    for step in iter_steps(definition.get("Steps", [])):
        name = str(step.get("Name"))
        notes += _apply(STEP_KEYS, step, name, "", "step")
        arguments = step.get("Arguments")
        if isinstance(arguments, Mapping):
            record_keys = {k: STEP_KEYS[k] for k in _ARGUMENT_RECORD_KEYS}
            present = {k: v for k, v in arguments.items() if k in record_keys}
            notes += _apply(record_keys, present, name, "Arguments.", "step")
    return notes


def refuse_first(problems: list[Problem]) -> None:
    """Raise the first of the definition reader's problems as a refusal."""
    if problems:
        problem = problems[0]
        raise UnsupportedDefinition(problem.step, problem.field, problem.text)


def check_references(definition: Mapping[str, Any]) -> None:
    """The reader's problems with expressions, then the references SageMaker resolves and the
    engine cannot: ``Std:JsonGet`` of an S3 object, and job names outside the job's own step."""
    refuse_first(reference_problems(definition))
    for step in iter_steps(definition.get("Steps", [])):
        name, kind = str(step.get("Name")), str(step.get("Type"))
        for path, expr in walk_expressions(own_arguments(step), "Arguments"):
            body = expr.get("Std:JsonGet")
            if isinstance(body, Mapping) and "S3Uri" in body:
                raise UnsupportedDefinition(
                    name,
                    f"{path}.S3Uri",
                    "Std:JsonGet over an S3Uri is not supported locally; use a PropertyFile",
                )
            reference = expr.get("Get")
            variable = (
                EXECUTION_VARIABLES.get(reference.removeprefix("Execution."))
                if isinstance(reference, str) and reference.startswith("Execution.")
                else None
            )
            if variable is not None and variable.job_of not in (None, kind):
                raise UnsupportedDefinition(
                    name,
                    path,
                    f"Get {reference}: the local engine gives it a value only in a {variable.job_of} step "
                    f"({variable.meaning}), not in a {kind} step; read the job's name from that step "
                    f"instead (Steps.<step>.{variable.name})",
                )


def check_graph(definition: Mapping[str, Any]) -> None:
    """Valid unique step names (the reader), step types and dependencies the engine runs, no cycle."""
    refuse_first(step_name_problems(definition))
    for step in iter_steps(definition.get("Steps", [])):
        name = str(step.get("Name"))
        kind = step.get("Type")
        if kind not in SUPPORTED_STEPS:
            raise UnsupportedDefinition(
                name,
                "Type",
                f"step type {kind!r} cannot run locally (the engine runs: {', '.join(SUPPORTED_STEPS)})",
            )
        for j, dep in enumerate(step.get("DependsOn", []) or []):
            if not isinstance(dep, str):
                raise UnsupportedDefinition(
                    name,
                    f"DependsOn[{j}]",
                    f"{dep!r}: a dependency with a trigger (run on the other step's failure, ...) "
                    "is not supported locally; depend on the step's success by naming it",
                )
    refuse_first(dependency_problems(definition))


def check_resolved(step: Mapping[str, Any], arguments: Mapping[str, Any], images: ImageMap) -> None:
    """The step's checks again on its resolved arguments (values read from earlier steps included)."""
    resolved = {**step, "Arguments": {**(step.get("Arguments") or {}), **arguments}}
    _CHECKS[str(step["Type"])](_StepChecker(resolved, images, _static_scope({})))


def check_definition(
    definition: Mapping[str, Any], images: ImageMap, parameters: Mapping[str, Any]
) -> list[Note]:
    """Raise :class:`UnsupportedDefinition` for the first thing the engine cannot run as written;
    return the notes a run of it records (what it does differently from SageMaker)."""
    if not isinstance(definition.get("Steps"), list) or not definition["Steps"]:
        raise UnsupportedDefinition(PIPELINE, "Steps", "the definition has no steps")
    refuse_first(parameter_problems(definition))
    check_graph(definition)
    notes = check_keys(definition)
    check_references(definition)
    scope = _static_scope(parameters)
    for step in iter_steps(definition["Steps"]):
        _CHECKS[str(step["Type"])](_StepChecker(step, images, scope))
    return notes
