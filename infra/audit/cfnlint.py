"""cfn-lint over every synthesized template: zero errors, and every warning kept is explained here.

Runs cfn-lint's Python API in-process (one import, no subprocess per template).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

# The one place kept warnings are explained. A warning not listed here fails the gate.
KEPT_WARNINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "W3005": (
            "CDK writes an explicit DependsOn on a Lambda function's role (and its policy) next to the "
            "GetAtt of the role; the duplicate edge is redundant and changes no deployment order"
        ),
        "W3010": (
            "a stage pinned to an account (prod) places its subnets in the AZs recorded in the committed "
            "cdk.context.json, so every synth and deploy uses the same AZs (CDK acknowledges the same)"
        ),
    }
)


@dataclass(frozen=True)
class LintFinding:
    rule_id: str
    level: str  # error | warning | informational
    message: str
    template: str
    path: str

    @property
    def explanation(self) -> str | None:
        return KEPT_WARNINGS.get(self.rule_id) if self.level == "warning" else None


@dataclass(frozen=True)
class LintResult:
    findings: tuple[LintFinding, ...]
    version: str

    @property
    def errors(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def unexplained_warnings(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.level == "warning" and f.explanation is None)

    @property
    def kept_warnings(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.explanation is not None)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unexplained_warnings


def _level(rule_id: str) -> str:
    return {"E": "error", "W": "warning"}.get(rule_id[:1], "informational")


def lint_templates(templates: Iterable[Path], *, regions: Iterable[str]) -> LintResult:
    """Lint each template for the given regions."""
    # Importing cfn-lint takes seconds; only linting pays for it.
    from cfnlint.api import ManualArgs, lint_file  # noqa: PLC0415
    from cfnlint.version import __version__  # noqa: PLC0415

    findings = []
    for template in sorted(templates):
        for match in lint_file(template, config=ManualArgs(regions=sorted(set(regions)))):
            findings.append(
                LintFinding(
                    rule_id=match.rule.id,
                    level=_level(match.rule.id),
                    message=match.message,
                    template=template.name,
                    path="/".join(str(p) for p in getattr(match, "path", []) or []),
                )
            )
    return LintResult(findings=tuple(findings), version=__version__)
