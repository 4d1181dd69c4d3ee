"""The security reviewer's report of one stage: one JSON document, rendered as Markdown and SARIF.

Pure: takes the read assembly, the gate result, the cfn-lint result and the tool versions,
returns data and text. ``rookery audit`` writes ``report.md``, ``audit.json`` and
``audit.sarif`` from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from infra.audit import controls, facts
from infra.audit.assembly import Assembly
from infra.audit.cfnlint import LintResult
from infra.audit.gate import GateResult
from infra.audit.guard import GUARD_PACK, GUARD_PLUGIN
from infra.audit.rules import ROOKERY_RULES

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"

_ROOKERY: Final = {rule.id: rule for rule in ROOKERY_RULES.rules}


def finding_controls(pack: str, rule_id: str) -> list[str]:
    """The catalogue's controls a finding belongs to: a rookery rule's own, or the pack rule's entry."""
    if pack == ROOKERY_RULES.name:
        rule = _ROOKERY.get(rule_id)
        return [c.id for c in rule.controls] if rule else []
    return [c.id for c in controls.controls_of_pack_rule(rule_id)]


def _with_controls(finding: Any) -> dict[str, Any]:
    return {**vars(finding), "controls": finding_controls(finding.pack, finding.rule_id)}


def build_report(
    *, stage: str, assembly: Assembly, gate: GateResult, lint: LintResult, versions: Mapping[str, str]
) -> dict[str, Any]:
    templates = {s.name: s.template for s in assembly.stacks}
    return {
        "stage": stage,
        "passed": gate.ok and lint.ok,
        "versions": dict(versions),
        "stacks": [
            {
                "name": s.name,
                "environment": s.environment,
                "termination_protection": s.termination_protection,
                "resources": len(s.template.get("Resources", {})),
            }
            for s in assembly.stacks
        ],
        "architecture": {
            name: {
                "network": facts.network_facts(t),
                "endpoints": facts.endpoint_facts(t),
                "security_groups": facts.security_group_matrix(t),
                "data_stores": facts.store_facts(t),
                "roles": facts.iam_facts(t),
                "bucket_exceptions": facts.bucket_exceptions(t),
            }
            for name, t in templates.items()
        },
        "keys": facts.key_facts(templates.values()),
        "findings": {
            "unacknowledged": [_with_controls(v) for v in gate.violations],
            "gate_problems": list(gate.problems),
            "acknowledged": [_with_controls(s) for s in assembly.suppressed],
            "cfn_lint": [{**vars(f), "level": f.level, "explanation": f.explanation} for f in lint.findings],
        },
        "exceptions_register": [
            {"id": a.rule_id, "at": a.construct_path, "reason": a.reason} for a in assembly.acknowledgments
        ],
        "rookery_rules": [
            {"id": r.id, "control": r.control, "title": r.title, "fix": r.fix} for r in ROOKERY_RULES.rules
        ],
        "controls": [
            {
                "id": c.id,
                "area": c.area,
                "title": c.title,
                "status": c.status,
                "note": c.note,
                "rookery_rules": [r.id for r in ROOKERY_RULES.rules if c in r.controls],
                "pack_rules": list(c.pack_rules),
            }
            for c in controls.CONTROLS
        ],
        "controls_document": controls.DOCUMENT,
    }


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    out = [f"# rookery security audit: stage `{report['stage']}` ({verdict})", ""]
    out += ["## Tools and commit", ""]
    out += _table(["tool", "version"], [[k, v] for k, v in report["versions"].items()])
    out += ["## Stacks", ""]
    out += _table(
        ["stack", "environment", "termination protection", "resources"],
        [
            [s["name"], s["environment"], s["termination_protection"], s["resources"]]
            for s in report["stacks"]
        ],
    )
    findings = report["findings"]
    out += ["## Verdict", ""]
    out += [
        f"- unacknowledged findings: {len(findings['unacknowledged'])}",
        f"- acknowledgment problems: {len(findings['gate_problems'])}",
        f"- acknowledged findings (each with a reason): {len(findings['acknowledged'])}",
        f"- cfn-lint errors: {sum(1 for f in findings['cfn_lint'] if f['level'] == 'error')}, "
        f"kept warnings (explained): {sum(1 for f in findings['cfn_lint'] if f['explanation'])}",
        "",
    ]
    titles = {c["id"]: c["title"] for c in report["controls"]}
    for v in findings["unacknowledged"]:
        out.append(f"- **{v['pack']} {v['rule_id']}** at `{v['construct_path']}`: {v['description']}")
        out += [f"  - control {c}: {titles[c]} ({report['controls_document']})" for c in v["controls"]]
    out += [f"- **problem**: {p}" for p in findings["gate_problems"]]
    for name, arch in report["architecture"].items():
        out += [f"## {name}", ""]
        net = arch["network"]
        if net["vpcs"]:
            out += [
                f"- internet gateways: {net['internet_gateways']}, NAT gateways: {net['nat_gateways']}, "
                f"gateway attachments: {net['gateway_attachments']}, routes: {net['routes']}",
                f"- subnets: {len(net['subnets'])}, with public IPs on launch: "
                f"{sum(1 for s in net['subnets'] if s['public_ip_on_launch'])}",
                "- flow logs: " + ", ".join(f"{f['traffic']} -> {f['log_group']}" for f in net["flow_logs"]),
                "",
            ]
        if arch["endpoints"]:
            out += ["### Endpoints and their policies", ""]
            rows = []
            for e in arch["endpoints"]:
                for s in e["statements"]:
                    reason = next((r["reason"] for r in e["reasons"] if r["actions"] == s["actions"]), "")
                    rows.append(
                        [e["service"], e["type"], s["actions"], s["resources"], s["conditions"], reason]
                    )
            out += _table(["endpoint", "type", "actions", "resources", "conditions", "reason"], rows)
        if arch["security_groups"]:
            out += ["### Security-group matrix", ""]
            out += _table(
                ["group", "direction", "peer", "ports", "description"],
                [
                    [r["group"], r["direction"], r["peer"], r["ports"], r["description"]]
                    for r in arch["security_groups"]
                ],
            )
        if arch["data_stores"]:
            out += ["### Data stores", ""]
            out += _table(
                ["store", "kind", "encryption", "key", "versioning", "access logs", "retention", "deletion"],
                [
                    [
                        s.get("name") or s["logical_id"],
                        s["kind"],
                        s["encryption"],
                        s.get("kms_key") or "-",
                        s.get("versioning", "-"),
                        s.get("access_logs") or "-",
                        s.get("retention_days", "-"),
                        s.get("deletion_policy") or "-",
                    ]
                    for s in arch["data_stores"]
                ],
            )
        for exceptions in arch["bucket_exceptions"]:
            out += [f"### Who may reach `{exceptions['bucket']}` without the VPC endpoint", ""]
            out += _table(
                ["principal", "reason"], [[e["principal"], e["reason"]] for e in exceptions["exceptions"]]
            )
            if exceptions["via_services"]:
                out += ["Also requests a service makes with the caller's credentials (`aws:CalledVia`):", ""]
                out += _table(
                    ["service", "reason"], [[v["service"], v["reason"]] for v in exceptions["via_services"]]
                )
        if arch["roles"]:
            out += ["### IAM: actions and resources per role", ""]
            rows = [
                [r["logical_id"], r["assumed_by"], s["effect"], s["actions"], s["resources"], s["conditions"]]
                for r in arch["roles"]
                for s in r["statements"]
                or [{"effect": "-", "actions": [], "resources": [], "conditions": []}]
            ]
            out += _table(["role", "assumed by", "effect", "actions", "resources", "conditions"], rows)
    out += ["## Keys and who may use them", ""]
    out += _table(
        ["key", "alias", "rotation", "key-policy principals", "granted to roles", "deletion"],
        [
            [k["logical_id"], k["alias"], k["rotation"], sorted({s["principal"] for s in k["key_policy"]}),
             k["granted_to"], k["deletion_policy"]]
            for k in report["keys"]
        ],
    )  # fmt: skip
    out += ["## Exceptions register (acknowledged findings)", ""]
    out += _table(
        ["pack", "rule", "control", "resource", "reason"],
        [
            [a["pack"], a["rule_id"], a["controls"] or "-", a["construct_path"], a["reason"]]
            for a in findings["acknowledged"]
        ],
    )
    kept = [f for f in findings["cfn_lint"] if f["explanation"]]
    if kept:
        out += ["## cfn-lint warnings kept, and why", ""]
        out += _table(
            ["rule", "template", "message", "why kept"],
            [[f["rule_id"], f["template"], f["message"], f["explanation"]] for f in kept],
        )
    out += ["## rookery's own rules", ""]
    out += _table(
        ["rule", "control", "checks", "fix"],
        [[r["id"], r["control"], r["title"], r["fix"]] for r in report["rookery_rules"]],
    )
    out += [f"## Controls and this stage's findings ({report['controls_document']})", ""]
    out += _table(
        ["control", "status", "what must be true", "checked by rookery", "unacknowledged", "acknowledged"],
        [
            [
                c["id"],
                c["status"],
                c["title"],
                c["rookery_rules"] or "-",
                sum(c["id"] in v["controls"] for v in findings["unacknowledged"]),
                sum(c["id"] in a["controls"] for a in findings["acknowledged"]),
            ]
            for c in report["controls"]
        ],
    )
    return "\n".join(out).rstrip() + "\n"


def render_sarif(report: Mapping[str, Any]) -> dict[str, Any]:
    """SARIF 2.1.0: one run per tool; acknowledged findings carry their reason as a suppression."""
    by_tool: dict[str, list[dict[str, Any]]] = {}
    findings = report["findings"]
    for v in findings["unacknowledged"]:
        by_tool.setdefault(v["pack"], []).append(_result(v["rule_id"], "error", v["description"], v, None))
    for s in findings["acknowledged"]:
        by_tool.setdefault(s["pack"], []).append(
            _result(s["rule_id"], "error", s["description"], s, s["reason"])
        )
    for f in findings["cfn_lint"]:
        level = {"error": "error", "warning": "warning"}.get(f["level"], "note")
        where = {"template": f["template"], "construct_path": f["path"]}
        result = _result(f["rule_id"], level, f["message"], where, f["explanation"])
        by_tool.setdefault("cfn-lint", []).append(result)
    runs = [
        {
            "tool": {
                "driver": {
                    "name": tool,
                    "version": report["versions"].get(_VERSION_KEYS.get(tool, tool), ""),
                    "rules": [{"id": rule} for rule in sorted({r["ruleId"] for r in results})],
                }
            },
            "results": results,
        }
        for tool, results in sorted(by_tool.items())
    ]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


_VERSION_KEYS: Final = {
    "AwsSolutions": "cdk-nag",
    "NIST.800.53.R5": "cdk-nag",
    GUARD_PACK: GUARD_PLUGIN,
    "Rookery": "rookery",
}


def _result(
    rule: str, level: str, message: str, where: Mapping[str, Any], reason: str | None
) -> dict[str, Any]:
    template = where.get("template") or ""
    result: dict[str, Any] = {
        "ruleId": rule,
        "level": level,
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": template or "cdk.out"}},
                "logicalLocations": [
                    {"fullyQualifiedName": where.get("construct_path", ""), "kind": "resource"}
                ],
            }
        ],
    }
    if reason:
        result["suppressions"] = [{"kind": "inSource", "justification": reason}]
    return result
