"""The keys a definition and its steps may hold, each with why the engine accepts, notes or refuses it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from emulators.sagemaker.exceptions import UnsupportedDefinition
from emulators.sagemaker.models import Note
from pipelines.definition import iter_steps
from pipelines.reading import PIPELINE

DEFINITION_VERSION: Final = "2020-12-01"  # the definition format the SageMaker SDK writes


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
