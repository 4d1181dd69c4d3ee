"""Job options the engine cannot honour: Pipe mode, manifests, compressed inputs, ..."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from emulators.sagemaker.checks.fields import StepFields

_SCALINGS: Final = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


def _processing(fields: StepFields) -> None:
    for i, item in enumerate(fields.args.get("ProcessingInputs", []) or []):
        base = f"ProcessingInputs[{i}].S3Input"
        if "S3Input" not in item:
            raise fields.refuse(f"Arguments.ProcessingInputs[{i}]", "only S3Input is supported locally")
        fields.one_of(f"{base}.S3DataType", ("S3Prefix", "S3Object"), "a manifest is not read locally")
        fields.one_of(f"{base}.S3InputMode", ("File", None), "Pipe mode streams; the engine stages files")
        fields.one_of(f"{base}.S3CompressionType", ("None", None), "inputs are staged as stored")
        fields.one_of(
            f"{base}.S3DataDistributionType",
            ("FullyReplicated", "ShardedByS3Key", None),
            "the engine copies an input whole or shards it by object",
        )
    for i, item in enumerate(fields.raw("ProcessingOutputConfig.Outputs") or []):
        if "S3Output" not in item:
            raise fields.refuse(
                f"Arguments.ProcessingOutputConfig.Outputs[{i}]", "only S3Output is supported locally"
            )


def _training_job(fields: StepFields, p: str, job: Mapping[str, Any]) -> None:
    """One training job definition (a Training step's arguments, a Tuning step's job definition)."""
    algorithm = job.get("AlgorithmSpecification", {}) or {}
    mode = algorithm.get("TrainingInputMode", "File")
    if mode not in ("File", "FastFile"):
        raise fields.refuse(
            f"Arguments.{p}AlgorithmSpecification.TrainingInputMode",
            f"{mode!r} is not supported locally (channels are staged as files); use File",
        )
    for i, metric in enumerate(algorithm.get("MetricDefinitions", []) or []):
        try:
            re.compile(str(metric.get("Regex", "")))
        except re.error as exc:
            raise fields.refuse(
                f"Arguments.{p}AlgorithmSpecification.MetricDefinitions[{i}].Regex", str(exc)
            ) from None
    fields.absent(f"{p}ResourceConfig.InstanceGroups", "heterogeneous clusters need several instances")
    for i, channel in enumerate(job.get("InputDataConfig", []) or []):
        base = f"{p}InputDataConfig[{i}]"
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if source is None:
            raise fields.refuse(
                f"Arguments.{base}.DataSource", "only S3DataSource channels are supported locally"
            )
        for key, value, allowed in (
            ("DataSource.S3DataSource.S3DataType", source.get("S3DataType"), ("S3Prefix", "S3Object")),
            ("CompressionType", channel.get("CompressionType"), (None, "None")),
            ("RecordWrapperType", channel.get("RecordWrapperType"), (None, "None")),
            ("InputMode", channel.get("InputMode"), (None, "File", "FastFile")),
        ):
            if value not in allowed:
                raise fields.refuse(
                    f"Arguments.{base}.{key}",
                    f"{value!r} is not supported locally; use one of {[a for a in allowed if a]}",
                )
    for key in ("DebugRuleConfigurations", "ProfilerRuleConfigurations"):
        fields.absent(f"{p}{key}", "Debugger rules run as separate processing jobs")


def _training(fields: StepFields) -> None:
    for prefix, job in fields.training_jobs():
        _training_job(fields, prefix, job)


def _tuning(fields: StepFields) -> None:
    fields.absent("TrainingJobDefinitions", "one training job definition per tuning step locally")
    fields.absent("WarmStartConfig", "there are no parent tuning jobs locally")
    if "TrainingJobDefinition" not in fields.args:
        raise fields.refuse("Arguments.TrainingJobDefinition", "is required")
    _training(fields)
    config = fields.args.get("HyperParameterTuningJobConfig") or {}
    base = "Arguments.HyperParameterTuningJobConfig"
    limits = config.get("ResourceLimits") or {}
    for key in ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs"):
        value = fields.scope.resolve(limits.get(key)) if key in limits else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fields.refuse(
                f"{base}.ResourceLimits.{key}", f"{value!r}: a positive whole number is required"
            )
    early = config.get("TrainingJobEarlyStoppingType", "Off")
    if early != "Off":
        raise fields.refuse(
            f"{base}.TrainingJobEarlyStoppingType",
            f"{early!r}: early stopping of trials is not emulated; use Off",
        )
    completion = config.get("TuningJobCompletionCriteria") or {}
    extra = sorted(set(completion) - {"TargetObjectiveMetricValue"})
    if extra:
        raise fields.refuse(
            f"{base}.TuningJobCompletionCriteria.{extra[0]}",
            "only TargetObjectiveMetricValue is supported locally",
        )
    objective = config.get("HyperParameterTuningJobObjective") or {}
    if objective.get("Type") not in ("Maximize", "Minimize"):
        raise fields.refuse(f"{base}.HyperParameterTuningJobObjective.Type", "must be Maximize or Minimize")
    job = fields.args["TrainingJobDefinition"]
    metrics = [m.get("Name") for m in job.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])]
    if objective.get("MetricName") not in metrics:
        raise fields.refuse(
            f"{base}.HyperParameterTuningJobObjective.MetricName",
            f"{objective.get('MetricName')!r} is not one of the job's MetricDefinitions {metrics}",
        )
    static = job.get("StaticHyperParameters", {}) or {}
    ranges = config.get("ParameterRanges") or {}
    count = 0
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges"):
        for i, spec in enumerate(ranges.get(kind, []) or []):
            count += 1
            field = f"{base}.ParameterRanges.{kind}[{i}]"
            name = spec.get("Name")
            if name in static:
                raise fields.refuse(field, f"{name!r} is both tuned and a static hyperparameter; keep one")
            if kind == "CategoricalParameterRanges":
                if not spec.get("Values"):
                    raise fields.refuse(f"{field}.Values", "needs at least one value")
                continue
            _range(fields, field, spec, integer=kind == "IntegerParameterRanges")
    if count == 0:
        raise fields.refuse(f"{base}.ParameterRanges", "declares no ranges to tune")


def _range(fields: StepFields, field: str, spec: Mapping[str, Any], *, integer: bool) -> None:
    try:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    except (KeyError, TypeError, ValueError):
        raise fields.refuse(field, "MinValue and MaxValue must be numbers (as strings)") from None
    if integer and (low != int(low) or high != int(high)):
        raise fields.refuse(field, "an integer range needs whole MinValue and MaxValue")
    if low > high:
        raise fields.refuse(field, f"MinValue {low:g} exceeds MaxValue {high:g}")
    scaling = spec.get("ScalingType", "Auto")
    if scaling not in _SCALINGS:
        raise fields.refuse(f"{field}.ScalingType", f"{scaling!r}; use one of {list(_SCALINGS)}")
    if scaling == "Logarithmic" and low <= 0:
        raise fields.refuse(f"{field}.ScalingType", "Logarithmic scaling needs MinValue > 0")
    if scaling == "ReverseLogarithmic" and (integer or high >= 1 or low < 0):
        raise fields.refuse(
            f"{field}.ScalingType", "ReverseLogarithmic scaling needs a continuous range within [0, 1)"
        )


def _model(fields: StepFields) -> None:
    fields.absent("Containers", "inference pipelines of several containers are not served locally")
    if "PrimaryContainer" not in fields.args:
        raise fields.refuse("Arguments.PrimaryContainer", "is required")
    mode = fields.args["PrimaryContainer"].get("Mode", "SingleModel")
    if mode != "SingleModel":
        raise fields.refuse(
            "Arguments.PrimaryContainer.Mode", f"{mode!r}; only SingleModel is served locally"
        )


def _register_model(fields: StepFields) -> None:
    if not fields.args.get("ModelPackageGroupName"):
        raise fields.refuse(
            "Arguments.ModelPackageGroupName",
            "is required (unversioned packages are not registered locally)",
        )
    containers = (fields.args.get("InferenceSpecification") or {}).get("Containers") or []
    if len(containers) != 1:
        raise fields.refuse(
            "Arguments.InferenceSpecification.Containers",
            f"{len(containers)} containers: the local registry serves exactly one",
        )
    status = fields.value("ModelApprovalStatus")
    if status is not None and status not in ("Approved", "PendingManualApproval", "Rejected"):
        raise fields.refuse("Arguments.ModelApprovalStatus", f"{status!r} is not an approval status")


def _transform(fields: StepFields) -> None:
    if not fields.args.get("ModelName"):
        raise fields.refuse("Arguments.ModelName", "is required")
    source = ((fields.args.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource")
    if source is None:
        raise fields.refuse("Arguments.TransformInput.DataSource", "only S3DataSource is supported locally")
    for path, allowed in (
        ("TransformInput.DataSource.S3DataSource.S3DataType", ("S3Prefix", "S3Object")),
        ("TransformInput.SplitType", (None, "None", "Line")),
        ("TransformInput.CompressionType", (None, "None")),
        ("TransformOutput.AssembleWith", (None, "None", "Line")),
        ("BatchStrategy", (None, "MultiRecord", "SingleRecord")),
    ):
        fields.one_of(path, allowed, "the local engine implements these")
    processing = fields.args.get("DataProcessing") or {}
    defaults = {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"}
    for key, value in processing.items():
        if defaults.get(key) != value:
            raise fields.refuse(
                f"Arguments.DataProcessing.{key}", f"{value!r}; only the defaults are supported locally"
            )


_BY_TYPE: Final[dict[str, Callable[[StepFields], None]]] = {
    "Processing": _processing,
    "Training": _training,
    "Tuning": _tuning,
    "Model": _model,
    "RegisterModel": _register_model,
    "Transform": _transform,
}


def check_options(fields: StepFields) -> None:
    check = _BY_TYPE.get(fields.kind)
    if check is not None:
        check(fields)
