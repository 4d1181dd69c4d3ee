"""The reviewer's facts and report, read from the synthesized templates; and ``rookery audit`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_testing import CliAudit, Synth
from typer.testing import CliRunner

from infra.audit import facts
from infra.audit.assembly import Violation
from infra.audit.cfnlint import LintResult
from infra.audit.controls import CATALOGUE, DOCUMENT
from infra.audit.gate import GateResult, evaluate
from infra.audit.report import build_report, finding_controls, render_markdown, render_sarif
from infra.constructs.data_lake import VIA_SERVICES
from rookery.cli.main import app as cli
from stage.names import DATA_BUCKETS

VERSIONS = {"commit": "abc", "cdk-nag": "3.0.2", "rookery": "0.1.0", "cfn-lint": "1.58.0"}


@pytest.mark.xdist_group("infra-synth")
def test_network_facts_show_no_way_out_and_one_flow_log(synth: Synth) -> None:
    net = facts.network_facts(synth.network)
    assert (net["internet_gateways"], net["nat_gateways"], net["gateway_attachments"], net["routes"]) == (
        0,
        0,
        0,
        0,
    )
    assert len(net["subnets"]) == synth.stage.max_azs
    assert not any(s["public_ip_on_launch"] for s in net["subnets"])
    assert [f["traffic"] for f in net["flow_logs"]] == ["ALL"]


@pytest.mark.xdist_group("infra-synth")
def test_endpoint_facts_list_every_endpoint_with_statements_and_reasons(synth: Synth) -> None:
    endpoints = facts.endpoint_facts(synth.network)
    assert sorted(e["service"] for e in endpoints if e["type"] == "Interface") == sorted(
        n.rsplit(".", 1)[-1] for n in synth.stage.interface_endpoints
    )
    assert all(e["statements"] and len(e["reasons"]) == len(e["statements"]) for e in endpoints)
    [gateway] = [e for e in endpoints if e["type"] == "Gateway"]
    assert "starport-layer-bucket" in gateway["reasons"][1]["reason"]


@pytest.mark.xdist_group("infra-synth")
def test_security_group_matrix_has_only_group_peers_for_ingress(synth: Synth) -> None:
    rows = facts.security_group_matrix(synth.network)
    ingress = [r for r in rows if r["direction"] == "ingress"]
    assert ingress and all(r["peer_is_group"] for r in ingress)
    egress_to_addresses = {
        (r["peer"], r["ports"]) for r in rows if r["direction"] == "egress" and not r["peer_is_group"]
    }
    assert egress_to_addresses <= {("0.0.0.0/0", "tcp/443"), ("255.255.255.255/32", "icmp/252-86")}


@pytest.mark.xdist_group("infra-synth")
def test_key_facts_name_the_roles_that_may_use_each_key(synth: Synth) -> None:
    keys = {k["alias"]: k for k in facts.key_facts([synth.network, synth.data])}
    q = synth.stage.qualifier
    assert set(keys) == {f"alias/{q}/{p}" for p in ("flow-logs", "data", "artifacts", "logs")}
    assert all(k["rotation"] for k in keys.values())
    data = synth.stacks.data
    assert set(keys[f"alias/{q}/data"]["granted_to"]) == {
        synth.logical_id(data.ingestion.role),
        synth.logical_id(data.catalog.crawler_role),
        synth.logical_id(data.ingestion.transform.role),
    }


@pytest.mark.xdist_group("infra-synth")
def test_store_facts_show_encryption_versioning_and_logging_per_store(synth: Synth) -> None:
    stores = facts.store_facts(synth.data)
    buckets = [s for s in stores if s["kind"] == "S3 bucket"]
    assert len(buckets) == 4 and all(b["versioning"] and b["public_access_blocked"] for b in buckets)
    assert sorted(b["encryption"] for b in buckets) == ["AES256", "aws:kms", "aws:kms", "aws:kms"]
    assert all(b["access_logs"] for b in buckets if b["encryption"] == "aws:kms")
    assert all(s["encryption"] != "none" for s in stores)
    assert {s["kind"] for s in stores} >= {
        "log group",
        "SQS queue",
        "Firehose stream",
        "Athena results",
        "Glue Data Catalog",
    }


@pytest.mark.xdist_group("infra-synth")
def test_iam_facts_list_every_role_with_its_actions(synth: Synth) -> None:
    roles = {r["logical_id"]: r for r in facts.iam_facts(synth.data)}
    firehose = roles[synth.logical_id(synth.stacks.data.ingestion.role)]
    assert firehose["assumed_by"] == ["firehose.amazonaws.com"]
    assert "lambda:InvokeFunction" in {a for s in firehose["statements"] for a in s["actions"]}
    assert all(r["managed_policies"] == [] for r in roles.values() if "AutoDelete" not in r["logical_id"])


@pytest.mark.xdist_group("infra-synth")
def test_report_renders_every_section_and_sarif_carries_reasons(dev: Synth) -> None:
    lint = LintResult(findings=(), version="test")
    report = build_report(
        stage="dev", assembly=dev.assembly, gate=evaluate(dev.assembly), lint=lint, versions=VERSIONS
    )
    assert report["passed"] is True
    json.dumps(report)  # machine-readable as is
    markdown = render_markdown(report)
    for heading in (
        "## Tools and commit",
        "### Endpoints and their policies",
        "### Security-group matrix",
        "## Keys and who may use them",
        "### Data stores",
        "### IAM: actions and resources per role",
        "## Exceptions register (acknowledged findings)",
        "## rookery's own rules",
    ):
        assert heading in markdown, heading
    assert "internet gateways: 0, NAT gateways: 0" in markdown
    sarif = render_sarif(report)
    assert sarif["version"] == "2.1.0"
    suppressed = [r for run in sarif["runs"] for r in run["results"] if "suppressions" in r]
    assert len(suppressed) == len(dev.assembly.suppressed)
    assert all(r["suppressions"][0]["justification"] for r in suppressed)


@pytest.mark.xdist_group("infra-synth")
def test_report_prints_the_written_reason_of_every_bucket_exception_including_athena(dev: Synth) -> None:
    report = build_report(
        stage="dev",
        assembly=dev.assembly,
        gate=evaluate(dev.assembly),
        lint=LintResult(findings=(), version="test"),
        versions=VERSIONS,
    )
    [athena] = VIA_SERVICES
    registers = report["architecture"][dev.stage.stack_name("Data")]["bucket_exceptions"]
    assert len(registers) == len(DATA_BUCKETS)
    for register in registers:
        assert register["via_services"] == [{"service": "athena.amazonaws.com", "reason": athena.reason}]
        assert register["exceptions"] and all(e["reason"] for e in register["exceptions"])
    markdown = render_markdown(report)
    assert markdown.count(f"| athena.amazonaws.com | {athena.reason} |") == len(DATA_BUCKETS)


@pytest.mark.xdist_group("infra-synth")
def test_report_links_every_acknowledged_finding_to_its_control(dev: Synth) -> None:
    report = build_report(
        stage="dev",
        assembly=dev.assembly,
        gate=evaluate(dev.assembly),
        lint=LintResult(findings=(), version="test"),
        versions=VERSIONS,
    )
    acknowledged = report["findings"]["acknowledged"]
    assert acknowledged and all(a["controls"] for a in acknowledged), [
        a["rule_id"] for a in acknowledged if not a["controls"]
    ]
    iam5 = [a for a in acknowledged if a["rule_id"].startswith("AwsSolutions-IAM5[")]
    assert iam5 and all(a["controls"] == ["I1"] for a in iam5)
    assert [c["id"] for c in report["controls"]] == list(CATALOGUE)
    markdown = render_markdown(report)
    assert "| pack | rule | control | resource | reason |" in markdown
    assert f"| AwsSolutions | {iam5[0]['rule_id']} | I1 | {iam5[0]['construct_path']} |" in markdown
    assert f"## Controls and this stage's findings ({DOCUMENT})" in markdown
    [row] = [line for line in markdown.splitlines() if line.startswith("| I1 | implemented |")]
    assert row.endswith(f"| 0 | {sum('I1' in a['controls'] for a in acknowledged)} |")
    # Rendering adds lines and columns; the findings' ids and messages are the validation report's.
    assert [(a["rule_id"], a["description"]) for a in acknowledged] == [
        (s.rule_id, s.description) for s in dev.assembly.suppressed
    ]


@pytest.mark.xdist_group("infra-synth")
def test_an_unacknowledged_finding_names_its_control_and_the_catalogue(dev: Synth) -> None:
    finding = Violation(
        pack="Rookery",
        rule_id="Rookery-D1b",
        description="Data buckets deny access from outside the VPC endpoint: ... (control D1b)",
        construct_path="Rookery-dev-Data/Probe/Resource",
        logical_id="Probe",
        template="Rookery-dev-Data.template.json",
    )
    gate = GateResult(violations=(finding,), problems=())
    report = build_report(
        stage="dev",
        assembly=dev.assembly,
        gate=gate,
        lint=LintResult(findings=(), version="test"),
        versions=VERSIONS,
    )
    assert report["passed"] is False
    assert report["findings"]["unacknowledged"][0]["controls"] == ["D1b"]
    markdown = render_markdown(report)
    assert f"  - control D1b: {CATALOGUE['D1b'].title} ({DOCUMENT})" in markdown
    [row] = [line for line in markdown.splitlines() if line.startswith("| D1b | implemented |")]
    assert row.endswith("| Rookery-D1b, Rookery-D1b2 | 1 | 0 |")
    # SARIF carries the finding exactly as the validation report wrote it.
    [result] = [
        r for run in render_sarif(report)["runs"] for r in run["results"] if r["ruleId"] == "Rookery-D1b"
    ]
    assert result["message"] == {"text": finding.description}


def test_findings_map_to_controls_through_their_rule() -> None:
    assert finding_controls("Rookery", "Rookery-N6") == ["N6"]
    assert finding_controls("Rookery", "Rookery-T3") == ["T3"]
    assert finding_controls("AwsSolutions", "AwsSolutions-IAM5[Resource::*]") == ["I1"]
    assert finding_controls("NIST.800.53.R5", "NIST.800.53.R5-S3BucketReplicationEnabled") == ["D1"]
    assert finding_controls("AwsSolutions", "AwsSolutions-ECR1") == []  # no control claims it
    assert finding_controls("Rookery", "Rookery-X1") == []  # a rule outside the pack


def test_audit_refuses_an_unknown_stage_before_synthesizing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--stage", "nope", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown stage 'nope'" in result.output
    assert not (tmp_path / "cdk.out").exists()


@pytest.mark.xdist_group("infra-audit-cli")
def test_rookery_audit_writes_the_report_for_a_stage(dev_cli_audit: CliAudit) -> None:
    done, tmp_path = dev_cli_audit.done, dev_cli_audit.out
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rookery audit dev: passed" in done.stdout
    # The real `cdk synth` wrote the interface templates (as `make synth` does into cdk.out/).
    for stack in ("Rookery-dev-Network", "Rookery-dev-Data"):
        assert (tmp_path / "cdk.out" / f"{stack}.template.json").is_file()
    report: dict[str, Any] = json.loads((tmp_path / "audit.json").read_text())
    assert report["passed"] is True
    assert report["versions"]["cdk-nag"] == "3.0.2" and report["versions"]["aws-cdk (CLI)"].startswith(
        "2.1148."
    )
    assert report["findings"]["unacknowledged"] == []
    assert all(a["reason"] for a in report["findings"]["acknowledged"])
    assert not [f for f in report["findings"]["cfn_lint"] if f["level"] == "error"]
    sarif = json.loads((tmp_path / "audit.sarif").read_text())
    assert {run["tool"]["driver"]["name"] for run in sarif["runs"]} >= {
        "AwsSolutions",
        "NIST.800.53.R5",
        "cfn-lint",
    }
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("# rookery security audit: stage `dev` (PASSED)")
    # The Node that ran jsii and the CLI is the venv's (>= 22), not the system's Node 20.
    venv_node = subprocess.run(
        [str(Path(sys.executable).with_name("node")), "--version"], capture_output=True, text=True, check=True
    )
    assert report["versions"]["node"] == venv_node.stdout.strip()
    # D1b's Athena exception is printed with its reason for each data bucket.
    [athena] = VIA_SERVICES
    assert markdown.count(f"| athena.amazonaws.com | {athena.reason} |") == len(DATA_BUCKETS)
