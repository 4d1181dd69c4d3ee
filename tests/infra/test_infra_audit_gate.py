"""Audit gates: no unacknowledged finding, a reason behind every acknowledgment, cfn-lint clean.

The shipped stages pass; small apps built here prove the gate fails for a finding without a
reason, an unacknowledged finding, an acknowledgment without its pack prefix and a stale one.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from infra_testing import Synth

from infra.app import register_audit, repo_context, synthesize
from infra.audit.acknowledge import acknowledge, acknowledge_cross_stack
from infra.audit.assembly import read_assembly
from infra.audit.cfnlint import KEPT_WARNINGS, lint_templates
from infra.audit.exceptions import PACKS, acknowledgment_problems
from infra.audit.gate import evaluate
from infra.audit.guard import CROSS_STACK_RULES, GUARD_PACK, guard_id
from infra.constructs.keys import KeyProps, PurposeKey

# ---------------------------------------------------------------- the shipped stages


@pytest.mark.xdist_group("infra-synth")
def test_no_unacknowledged_finding_and_every_acknowledgment_has_a_reason(any_synth: Synth) -> None:
    result = evaluate(any_synth.assembly)
    assert result.ok, result.summary()
    assert any_synth.assembly.has_report
    assert any_synth.assembly.suppressed, "the report should list the accepted findings"
    for suppressed in any_synth.assembly.suppressed:
        assert suppressed.pack in PACKS
        assert acknowledgment_problems(suppressed.acknowledged_id, suppressed.reason) == []


@pytest.mark.xdist_group("infra-synth")
def test_acknowledgments_are_specific_to_one_resource(any_synth: Synth) -> None:
    stack_paths = {s.name for s in any_synth.assembly.stacks}
    for ack in any_synth.assembly.acknowledgments:
        if ack.namespace in PACKS:
            # Never on a whole stack or the app: on the construct the finding is about.
            assert ack.construct_path not in stack_paths and "/" in ack.construct_path, ack


@pytest.mark.xdist_group("infra-synth")
def test_synth_needs_no_aws_lookups(any_synth: Synth) -> None:
    assert any_synth.assembly.missing_context == ()


@pytest.mark.xdist_group("infra-synth")
def test_every_rookery_rule_passes_on_the_shipped_templates(any_synth: Synth) -> None:
    from infra.audit.rules import ROOKERY_RULES  # noqa: PLC0415

    for stack in any_synth.assembly.stacks:
        assert ROOKERY_RULES.evaluate(stack.template) == [], stack.name


# Plain dev is linted by `rookery audit` in test_infra_report.py (its exit code includes cfn-lint).
# The session's synth fixtures, so each variant is synthesized once per worker.
@pytest.mark.xdist_group("infra-synth")
@pytest.mark.parametrize("variant", ["dev_destroy", "prod"])
def test_cfn_lint_reports_no_error_and_only_explained_warnings(
    request: pytest.FixtureRequest, variant: str
) -> None:
    synth: Synth = request.getfixturevalue(variant)
    result = lint_templates([s.template_path for s in synth.assembly.stacks], regions=[synth.stage.region])
    assert result.errors == ()
    assert result.unexplained_warnings == ()
    assert result.ok
    assert {f.rule_id for f in result.kept_warnings} <= set(KEPT_WARNINGS)


def test_every_kept_cfn_lint_warning_is_explained() -> None:
    assert KEPT_WARNINGS
    assert all(rule.startswith("W") and len(reason) > 40 for rule, reason in KEPT_WARNINGS.items())


# ---------------------------------------------------------------- the gate itself, on small apps


def _small_app(outdir: Path) -> tuple[cdk.App, s3.Bucket]:
    """One bucket without TLS enforcement: AwsSolutions-S10 (and others) fire on it."""
    app = cdk.App(outdir=str(outdir), context=repo_context())
    stack = cdk.Stack(app, "GateProbe")
    bucket = s3.Bucket(stack, "Probe", enforce_ssl=False)
    register_audit(app)
    return app, bucket


def _gate(app: cdk.App) -> tuple[bool, str]:
    result = evaluate(read_assembly(synthesize(app)))
    return result.ok, result.summary()


@pytest.mark.xdist_group("infra-gate")
def test_gate_fails_on_unacknowledged_findings(tmp_path: Path) -> None:
    app, _ = _small_app(tmp_path)
    ok, summary = _gate(app)
    assert not ok
    assert "AwsSolutions-S10" in summary
    assert "Rookery-D1b" in summary  # rookery's own pack ran inside synth too


@pytest.mark.xdist_group("infra-gate")
def test_gate_fails_on_a_finding_acknowledged_without_a_reason(tmp_path: Path) -> None:
    app, bucket = _small_app(tmp_path)
    # Bypass the helper, as anyone could: CDK itself accepts the empty reason.
    cdk.Validations.of(bucket).acknowledge(cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-S10", reason=""))
    result = evaluate(read_assembly(synthesize(app)))
    assert not result.ok
    assert "AwsSolutions-S10" not in {v.rule_id for v in result.violations}  # CDK did suppress it
    assert any("AwsSolutions::AwsSolutions-S10" in p and "reason" in p for p in result.problems), (
        result.problems
    )


@pytest.mark.xdist_group("infra-gate")
def test_gate_fails_on_an_acknowledgment_without_its_pack_prefix(tmp_path: Path) -> None:
    app, bucket = _small_app(tmp_path)
    # cdk-nag silently drops a finding acknowledged by bare id: it never reaches the report.
    cdk.Validations.of(bucket).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-S10", reason="a long enough reason that still must not pass the gate"
        )
    )
    result = evaluate(read_assembly(synthesize(app)))
    assert any("'Pack::Rule' form" in p for p in result.problems), result.problems


@pytest.mark.xdist_group("infra-gate")
def test_gate_fails_on_a_stale_acknowledgment(tmp_path: Path) -> None:
    app, bucket = _small_app(tmp_path)
    acknowledge(
        bucket,
        "AwsSolutions::AwsSolutions-IAM4",
        "there is no role here; this acknowledgment covers nothing and must be flagged",
    )
    result = evaluate(read_assembly(synthesize(app)))
    assert any("stale" in p for p in result.problems), result.problems


@pytest.mark.xdist_group("infra-gate")
def test_gate_passes_when_every_finding_is_fixed_or_acknowledged(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path), context=repo_context())
    stack = cdk.Stack(app, "GateProbe")
    bucket = s3.Bucket(stack, "Probe", enforce_ssl=True)
    register_audit(app)
    before = evaluate(read_assembly(synthesize(app)))
    assert not before.ok
    app = cdk.App(outdir=str(tmp_path / "again"), context=repo_context())
    stack = cdk.Stack(app, "GateProbe")
    bucket = s3.Bucket(stack, "Probe", enforce_ssl=True)
    for violation in before.violations:
        assert violation.pack in PACKS
        acknowledge(
            bucket,
            f"{violation.pack}::{violation.rule_id}",
            f"probe bucket of this test: {violation.rule_id} accepted",
        )
    register_audit(app)
    after = evaluate(read_assembly(synthesize(app)))
    assert after.ok, after.summary()


@pytest.mark.xdist_group("infra-synth")
def test_control_tower_rules_run_beside_cdk_nag_and_every_finding_of_theirs_has_a_reason(
    any_synth: Synth,
) -> None:
    assembly = any_synth.assembly
    assert set(assembly.plugins) >= {"AwsSolutions", "NIST.800.53.R5", GUARD_PACK}
    accepted = [s for s in assembly.suppressed if s.pack == GUARD_PACK]
    assert accepted and all(s.reason and s.acknowledged_id == guard_id(s.rule_id) for s in accepted)
    # CT.KMS.PR.3 is met, not acknowledged: every key denies grants that are not for AWS resources.
    assert "kms_create_grant_aws_service_check" not in {s.rule_id for s in accepted}
    # A cross-stack false positive carries the catalogue's reason (CDK's own providers outside the VPC
    # are real exceptions with reasons of their own).
    false_positives = [s for s in accepted if s.reason.startswith("false positive of ")]
    assert false_positives
    for finding in false_positives:
        assert finding.reason == CROSS_STACK_RULES[finding.rule_id].reason


def _key_app(outdir: Path, *, deny_grants: bool) -> cdk.App:
    app = cdk.App(outdir=str(outdir), context=repo_context())
    stack = cdk.Stack(app, "GuardProbe")
    if deny_grants:
        PurposeKey(stack, "Key", props=KeyProps(qualifier="probe-dev", purpose="probe", description="probe"))
    else:
        kms.Key(stack, "Key", enable_key_rotation=True)
    register_audit(app)
    return app


@pytest.mark.xdist_group("infra-gate")
def test_a_control_tower_finding_fails_the_gate_until_fixed(tmp_path: Path) -> None:
    """CT.KMS.PR.3 on a key without the grant deny; the shared key construct passes it."""
    plain = evaluate(read_assembly(synthesize(_key_app(tmp_path / "plain", deny_grants=False))))
    assert [(v.pack, v.rule_id) for v in plain.violations if v.pack == GUARD_PACK] == [
        (GUARD_PACK, "kms_create_grant_aws_service_check")
    ]
    shared = evaluate(read_assembly(synthesize(_key_app(tmp_path / "shared", deny_grants=True))))
    assert [v.rule_id for v in shared.violations if v.pack == GUARD_PACK] == []


def test_a_cross_stack_false_positive_is_acknowledged_only_across_stacks() -> None:
    app = cdk.App()
    data, other = cdk.Stack(app, "Data"), cdk.Stack(app, "Other")
    key = kms.Key(data, "Key")
    local = logs.LogGroup(data, "Local", encryption_key=key)
    remote = logs.LogGroup(other, "Remote", encryption_key=key)
    rule = "cloudwatch_log_group_encrypted_check"
    acknowledge_cross_stack(local, rule, key)
    acknowledge_cross_stack(remote, rule, key)

    def acknowledged(scope: cdk.Resource) -> dict[str, str]:
        return {
            k: v
            for entry in scope.node.metadata
            if entry.type == "aws:cdk:acknowledged-rules"
            for k, v in entry.data.items()
        }

    assert acknowledged(local) == {}
    assert acknowledged(remote) == {guard_id(rule): CROSS_STACK_RULES[rule].reason}
    with pytest.raises(ValueError, match="not a guard rule known to misread cross-stack references"):
        acknowledge_cross_stack(remote, "kms_create_grant_aws_service_check", key)


# ---------------------------------------------------------------- the acknowledgment helper


@pytest.mark.parametrize(
    ("rule_id", "reason", "message"),
    [
        ("AwsSolutions-S1", "a perfectly long and specific reason for this bucket", "'Pack::Rule' form"),
        ("Foo::Foo-X1", "a perfectly long and specific reason for this bucket", "registered packs"),
        ("AwsSolutions::AwsSolutions-S1", "", "reason is empty"),
        ("AwsSolutions::AwsSolutions-S1", "false positive", "too thin"),
        ("AwsSolutions::AwsSolutions-S1", "short", "too thin"),
        (f"{GUARD_PACK}::Kms-Rule", "a perfectly long and specific reason for this key", "'Pack::Rule' form"),
        (f"{GUARD_PACK}::kms_create_grant_aws_service_check", "", "reason is empty"),
    ],
)
def test_acknowledge_refuses_ids_and_reasons_a_reviewer_would_reject(
    rule_id: str, reason: str, message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(ValueError, match=message) as raised:
        acknowledge(stack, rule_id, reason)
    assert "S" in str(raised.value)  # names where it was attempted


def test_acknowledgment_problems_accepts_finding_specific_ids() -> None:
    assert (
        acknowledgment_problems(
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "ENI management has no resource-level permissions at all",
        )
        == []
    )
    assert (
        acknowledgment_problems(
            "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
            "generated for one role alone; nothing to attach elsewhere",
        )
        == []
    )
