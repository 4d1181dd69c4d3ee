"""The demo's audit phase: one synth per stage, then rookery audit's gate, cfn-lint pass and report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rookery.demo.audit import StageAudit, _audit_one, audit_stages
from stage import ConfigError


@pytest.fixture(scope="module")
def dev_audit(tmp_path_factory: pytest.TempPathFactory) -> StageAudit:
    seen: list[StageAudit] = []
    (result,) = audit_stages(["dev"], tmp_path_factory.mktemp("audit"), on_stage=seen.append)
    assert seen == [result]
    return result


@pytest.mark.slow
@pytest.mark.xdist_group("demo-audit")
def test_the_summary_is_the_reviewers_report(dev_audit: StageAudit) -> None:
    report = json.loads((dev_audit.report_dir / "audit.json").read_text())

    assert dev_audit.passed == report["passed"]
    assert [(s.name, s.resources) for s in dev_audit.stacks] == [
        (s["name"], s["resources"]) for s in report["stacks"]
    ]
    assert {"Rookery-dev-Network", "Rookery-dev-Data"} <= {s.name for s in dev_audit.stacks}
    assert dev_audit.unacknowledged == len(report["findings"]["unacknowledged"])
    assert dev_audit.acknowledged == len(report["findings"]["acknowledged"]) > 0
    assert dev_audit.report_path.read_text().startswith("# rookery security audit: stage `dev`")
    assert (dev_audit.report_dir / "audit.sarif").is_file()
    assert (dev_audit.report_dir / "cdk.out" / "manifest.json").is_file()
    assert bool(dev_audit.problems) == (not dev_audit.passed)


def test_an_unknown_stage_fails_before_any_synth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        audit_stages(["dev", "nope"], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_stage_that_does_not_synthesize_fails_with_cdks_own_words(tmp_path: Path) -> None:
    result = _audit_one("dev", tmp_path / "dev" / "cdk.out", "Error: something in app.py broke\n", {})

    assert not result.passed and result.stacks == ()
    assert result.problems == ("cdk synth failed for stage 'dev':\nError: something in app.py broke",)
