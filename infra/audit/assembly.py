"""Read a synthesized cloud assembly (``cdk.out``): stack templates, the validation report, acknowledgments.

Pure file reading, no CDK import; the gate, the audit report and ``rookery demo`` share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ACKNOWLEDGED_RULES: Final = (
    "aws:cdk:acknowledged-rules"  # aws_cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
)
VALIDATION_REPORT: Final = "validation-report.json"


class AssemblyError(RuntimeError):
    """The directory is not a usable cloud assembly; the message says what to run."""


@dataclass(frozen=True)
class StackArtifact:
    name: str  # the stack name, e.g. Rookery-dev-Network
    template_path: Path
    template: Mapping[str, Any]
    environment: str  # aws://account/region (unknown-account/unknown-region when agnostic)
    termination_protection: bool


@dataclass(frozen=True)
class Acknowledgment:
    """One ``Validations.of(...).acknowledge(...)`` as recorded in the assembly."""

    rule_id: str  # e.g. "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    reason: str
    construct_path: str  # where it was recorded, e.g. "Rookery-dev-Data/Lake/RawBucket"

    @property
    def namespace(self) -> str:
        return self.rule_id.split("::", 1)[0] if "::" in self.rule_id else ""


@dataclass(frozen=True)
class Violation:
    """A finding of a validation plugin that no acknowledgment covers."""

    pack: str
    rule_id: str
    description: str
    construct_path: str
    logical_id: str
    template: str


@dataclass(frozen=True)
class SuppressedViolation:
    pack: str
    rule_id: str
    description: str
    construct_path: str
    acknowledged_id: str
    acknowledged_at: str
    reason: str


@dataclass(frozen=True)
class Assembly:
    directory: Path
    stacks: tuple[StackArtifact, ...]
    acknowledgments: tuple[Acknowledgment, ...]
    plugins: tuple[str, ...]
    violations: tuple[Violation, ...]
    suppressed: tuple[SuppressedViolation, ...]
    missing_context: tuple[str, ...] = field(default=())
    has_report: bool = True

    def stack(self, name: str) -> StackArtifact:
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise KeyError(f"no stack {name!r} in {self.directory}; stacks: {[s.name for s in self.stacks]}")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssemblyError(f"{path} is missing; synthesize first (make synth)") from None


def read_assembly(directory: Path) -> Assembly:
    """Read ``directory`` (a ``cdk.out``) into plain data."""
    manifest = _json(directory / "manifest.json")
    stacks: list[StackArtifact] = []
    acknowledgments: list[Acknowledgment] = []
    for artifact_id, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        template_path = directory / properties["templateFile"]
        stacks.append(
            StackArtifact(
                name=properties.get("stackName", artifact_id),
                template_path=template_path,
                template=_json(template_path),
                environment=artifact.get("environment", ""),
                termination_protection=bool(properties.get("terminationProtection", False)),
            )
        )
        metadata = dict(artifact.get("metadata", {}))
        extra = artifact.get("additionalMetadataFile")
        if extra:
            metadata.update(_json(directory / extra))
        for path, entries in sorted(metadata.items()):
            for entry in entries:
                if entry.get("type") == ACKNOWLEDGED_RULES:
                    for rule_id, reason in sorted(entry.get("data", {}).items()):
                        acknowledgments.append(Acknowledgment(rule_id, reason or "", path.lstrip("/")))
    report_path = directory / VALIDATION_REPORT
    report = _json(report_path) if report_path.is_file() else {"pluginReports": []}
    violations, suppressed, plugins = _read_report(report)
    missing = tuple(m.get("key", "?") for m in manifest.get("missing", []))
    return Assembly(
        directory=directory,
        stacks=tuple(stacks),
        acknowledgments=tuple(acknowledgments),
        plugins=plugins,
        violations=tuple(violations),
        suppressed=tuple(suppressed),
        missing_context=missing,
        has_report=report_path.is_file(),
    )


def _read_report(
    report: Mapping[str, Any],
) -> tuple[list[Violation], list[SuppressedViolation], tuple[str, ...]]:
    violations: list[Violation] = []
    suppressed: list[SuppressedViolation] = []
    plugins: list[str] = []
    for plugin in report.get("pluginReports", []):
        pack = plugin.get("pluginName", "?")
        plugins.append(pack)
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                resource = construct.get("cloudFormationResource") or {}
                violations.append(
                    Violation(
                        pack=pack,
                        rule_id=violation.get("ruleName", "?"),
                        description=violation.get("description", ""),
                        construct_path=construct.get("constructPath", ""),
                        logical_id=resource.get("logicalId", ""),
                        template=resource.get("templatePath", ""),
                    )
                )
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation.get("violatingConstructs", []):
                suppressed.append(
                    SuppressedViolation(
                        pack=pack,
                        rule_id=violation.get("ruleName", "?"),
                        description=violation.get("description", ""),
                        construct_path=construct.get("constructPath", ""),
                        acknowledged_id=violation.get("acknowledgedId", ""),
                        acknowledged_at=violation.get("acknowledgedAt", ""),
                        reason=violation.get("reason") or "",
                    )
                )
    return violations, suppressed, tuple(plugins)
