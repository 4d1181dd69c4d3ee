"""Images and entrypoints: each image a step names is one the image map runs, started the way it can."""

from __future__ import annotations

from emulators.core.images import ImageError
from emulators.sagemaker.checks.fields import StepFields
from pipelines.definition import field_path
from pipelines.reading.containers import image_fields


def check_images(fields: StepFields) -> None:
    for prefix, job in fields.training_jobs():
        if (job.get("AlgorithmSpecification") or {}).get("AlgorithmName"):
            raise fields.refuse(
                f"Arguments.{prefix}AlgorithmSpecification.AlgorithmName",
                "marketplace algorithms cannot run locally; use the project image (TrainingImage)",
            )
    if fields.kind == "RegisterModel":
        fields.absent("SourceAlgorithmSpecification", "marketplace algorithms cannot run locally")
    for image_field in image_fields(fields.step):
        path = field_path(*image_field.image)
        entry_path = field_path(*image_field.entrypoint) if image_field.entrypoint else None
        image = fields.value(path, required=True)
        try:
            fields.images.program(image)
        except ImageError as exc:
            raise fields.refuse(f"Arguments.{path}", str(exc)) from None
        if entry_path is not None and not image_field.command and not fields.raw(entry_path):
            # Without an entrypoint the image would run its own ENTRYPOINT, which the engine does not know.
            raise fields.refuse(
                f"Arguments.{entry_path}", "is required locally (['python3', '/opt/program/<script>.py'])"
            )
        entry = fields.value(entry_path) if entry_path else None
        try:
            fields.images.command(image, entry, default=image_field.command)
        except ImageError as exc:
            field = f"Arguments.{entry_path}" if entry is not None and entry_path else f"Arguments.{path}"
            raise fields.refuse(field, str(exc)) from None
