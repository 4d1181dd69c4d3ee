"""Where data lives: S3 URIs the local S3 maps, LocalPaths under /opt/ml, property files inside an output."""

from __future__ import annotations

from collections.abc import Mapping

from emulators.core.errors import LocalEngineError
from emulators.core.sandbox import OPT_ML
from emulators.s3 import split_s3_uri
from emulators.sagemaker.checks.fields import StepFields

_ROOT = str(OPT_ML)


def _s3(fields: StepFields, path: str, *, required: bool = True) -> None:
    value = fields.value(path, required=required)
    if value is None:
        return
    if not isinstance(value, str):
        raise fields.refuse(f"Arguments.{path}", f"{value!r} is not an S3 URI string")
    try:
        split_s3_uri(value)
    except LocalEngineError as exc:
        raise fields.refuse(f"Arguments.{path}", str(exc)) from None


def _local_path(fields: StepFields, path: str, *, required: bool = True) -> None:
    value = fields.value(path, required=required)
    if value is None:
        return
    text = str(value)
    if not (text == _ROOT or text.startswith(_ROOT + "/")) or ".." in text.split("/"):
        raise fields.refuse(
            f"Arguments.{path}",
            f"{text!r} is outside {_ROOT}; the local engine maps only {_ROOT}/... into a job's sandbox",
        )


def _processing(fields: StepFields) -> None:
    for i, _ in enumerate(fields.args.get("ProcessingInputs", []) or []):
        _s3(fields, f"ProcessingInputs[{i}].S3Input.S3Uri")
        _local_path(fields, f"ProcessingInputs[{i}].S3Input.LocalPath")
    outputs = set()
    for i, item in enumerate(fields.raw("ProcessingOutputConfig.Outputs") or []):
        outputs.add(item.get("OutputName"))
        _s3(fields, f"ProcessingOutputConfig.Outputs[{i}].S3Output.S3Uri")
        _local_path(fields, f"ProcessingOutputConfig.Outputs[{i}].S3Output.LocalPath")
    for i, declared in enumerate(fields.step.get("PropertyFiles", []) or []):
        output = declared.get("OutputName")
        if output not in outputs:
            raise fields.refuse(
                f"PropertyFiles[{i}].OutputName",
                f"{output!r} is not one of the step's outputs {sorted(map(str, outputs))}",
            )
        file_path = str(declared.get("FilePath", ""))
        if not file_path or file_path.startswith("/") or ".." in file_path.split("/"):
            raise fields.refuse(
                f"PropertyFiles[{i}].FilePath", f"{file_path!r} must be a path inside the output"
            )


def _training(fields: StepFields) -> None:
    for p, job in fields.training_jobs():
        for i, _ in enumerate(job.get("InputDataConfig", []) or []):
            _s3(fields, f"{p}InputDataConfig[{i}].DataSource.S3DataSource.S3Uri")
        _s3(fields, f"{p}OutputDataConfig.S3OutputPath")
        if job.get("CheckpointConfig"):
            _s3(fields, f"{p}CheckpointConfig.S3Uri")
            _local_path(fields, f"{p}CheckpointConfig.LocalPath", required=False)


def _model(fields: StepFields) -> None:
    _s3(fields, "PrimaryContainer.ModelDataUrl")


def _register_model(fields: StepFields) -> None:
    _s3(fields, "InferenceSpecification.Containers[0].ModelDataUrl")
    for section, entries in (fields.args.get("ModelMetrics") or {}).items():
        for kind, entry in (entries or {}).items():
            if isinstance(entry, Mapping) and "S3Uri" in entry:
                _s3(fields, f"ModelMetrics.{section}.{kind}.S3Uri")


def _transform(fields: StepFields) -> None:
    _s3(fields, "TransformInput.DataSource.S3DataSource.S3Uri")
    _s3(fields, "TransformOutput.S3OutputPath")


_BY_TYPE = {
    "Processing": _processing,
    "Training": _training,
    "Tuning": _training,
    "Model": _model,
    "RegisterModel": _register_model,
    "Transform": _transform,
}


def check_locations(fields: StepFields) -> None:
    check = _BY_TYPE.get(fields.kind)
    if check is not None:
        check(fields)
