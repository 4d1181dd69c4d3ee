"""Where each step type names the images it runs: the image field, the entrypoint beside it, and what
the image runs without one (``docker run <image> train|serve``, or its own ENTRYPOINT)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FieldPath = tuple[str | int, ...]  # a path inside a step's Arguments, e.g. ("AppSpecification", "ImageUri")


@dataclass(frozen=True)
class ImageField:
    """One image a step runs."""

    image: FieldPath
    entrypoint: FieldPath | None  # the ContainerEntrypoint beside it, when the API has one
    command: str  # what the image runs without an entrypoint: "train", "serve", "" (its ENTRYPOINT)


def training_job_definitions(arguments: Mapping[str, Any]) -> list[tuple[FieldPath, Mapping[str, Any]]]:
    """A tuning step's training job definitions with their paths (the one SageMaker requires when
    neither ``TrainingJobDefinition`` nor ``TrainingJobDefinitions`` is given)."""
    if "TrainingJobDefinition" in arguments or not arguments.get("TrainingJobDefinitions"):
        return [(("TrainingJobDefinition",), arguments.get("TrainingJobDefinition") or {})]
    return [(("TrainingJobDefinitions", i), job) for i, job in enumerate(arguments["TrainingJobDefinitions"])]


def _training(at: FieldPath) -> ImageField:
    return ImageField(
        (*at, "AlgorithmSpecification", "TrainingImage"),
        (*at, "AlgorithmSpecification", "ContainerEntrypoint"),
        "train",
    )


def image_fields(step: Mapping[str, Any]) -> list[ImageField]:
    """Every image ``step`` names, in the order of its arguments."""
    kind = step.get("Type")
    arguments = step.get("Arguments") or {}
    if kind == "Processing":
        return [ImageField(("AppSpecification", "ImageUri"), ("AppSpecification", "ContainerEntrypoint"), "")]
    if kind == "Training":
        return [_training(())]
    if kind == "Tuning":
        return [_training(at) for at, _ in training_job_definitions(arguments)]
    if kind == "Model":
        if "PrimaryContainer" in arguments:
            return [ImageField(("PrimaryContainer", "Image"), None, "serve")]
        return [
            ImageField(("Containers", i, "Image"), None, "serve")
            for i, _ in enumerate(arguments.get("Containers") or [])
        ]
    if kind == "RegisterModel":
        containers = (arguments.get("InferenceSpecification") or {}).get("Containers") or []
        return [
            ImageField(("InferenceSpecification", "Containers", i, "Image"), None, "serve")
            for i, _ in enumerate(containers)
        ]
    return []
