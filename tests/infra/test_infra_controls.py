"""The controls catalogue: the one source of control ids, its published document, and every citation of it."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import cdk_nag
import cdklabs.cdk_validator_cfnguard as cfnguard
import pytest

from infra.audit import controls
from infra.audit.controls import (
    CATALOGUE,
    CONTROLS,
    DOCUMENT_PATH,
    UnknownControlError,
    render_markdown,
    resolve,
)
from infra.audit.exceptions import PACKS
from infra.audit.guard import CROSS_STACK_RULES, GUARD_PACK
from infra.audit.rules import ROOKERY_RULES, rule
from infra.audit.rules.pack import declared
from stage import REPO_ROOT

# Where code, comments and documents cite control ids. containers/ is left out: the image's
# hyperparameters speak of L1 and L2 regularization, which are no controls.
CITING: tuple[str, ...] = ("infra", "pipelines", "rookery", "stage", "emulators", "lambdas", "docs")
CITING_FILES: tuple[str, ...] = ("README.md",)
_LETTERS = "".join(sorted({c.id[0] for c in CONTROLS}))
# A control id or range standing alone: not inside a word, a path or a rule id (Rookery-D1b2).
CITATION = re.compile(
    rf"(?<![\w.:/-])([{_LETTERS}][1-9][0-9]?(?:b[0-9]?)?(?:-[{_LETTERS}][1-9][0-9]?)?)(?![\w-])"
)


def _citing_files() -> list[Path]:
    files = [REPO_ROOT / name for name in CITING_FILES]
    for folder in CITING:
        files += [p for p in (REPO_ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".toml")]
    return sorted(files)


def test_every_rule_checks_controls_of_the_catalogue() -> None:
    for checked in ROOKERY_RULES.rules:
        assert checked.controls, checked.id
        assert all(c.id in CATALOGUE for c in checked.controls), checked.id


def test_a_rule_citing_an_unknown_control_fails_when_it_is_declared() -> None:
    count = len(declared())
    declare = rule(id="Rookery-X9", control="X9", title="nothing", fix="nothing")
    with pytest.raises(
        UnknownControlError, match=r"rule Rookery-X9: 'X9' names no control \['X9'\] of docs/"
    ):
        declare(lambda template: [])
    assert len(declared()) == count


def test_references_are_one_id_or_an_ascending_range_of_known_ids() -> None:
    assert [c.id for c in resolve("D1b")] == ["D1b"]
    assert [c.id for c in resolve("N1-N4")] == ["N1", "N2", "N3", "N4"]
    for bad in ("N4-N1", "N1-T3", "D1b-D3", "n1", "N1,N2", ""):
        with pytest.raises(UnknownControlError, match="not a control id or range"):
            resolve(bad)
    with pytest.raises(UnknownControlError, match=r"names no control \['N8', 'N9'\]"):
        resolve("N6-N9")


def test_the_catalogue_is_complete_for_each_control() -> None:
    assert len(CATALOGUE) == len(CONTROLS)  # ids are unique
    rookery_checked = {c.id for r in ROOKERY_RULES.rules for c in r.controls}
    for control in CONTROLS:
        assert control.area in controls.AREAS, control.id
        assert control.title and control.where, control.id
        for path in control.tests:
            assert (REPO_ROOT / path).is_file(), f"{control.id}: {path} does not exist"
        for pack_rule in control.pack_rules:
            # cdk-nag's rules carry their pack as a prefix; Control Tower's are snake-case names.
            pack = GUARD_PACK if re.fullmatch(r"[a-z0-9_]+", pack_rule) else pack_rule.split("-", 1)[0]
            assert pack in PACKS, f"{control.id}: {pack_rule} names no registered pack"
        if control.status == "implemented":
            # Met only when a test proves it on the synthesized output.
            assert control.tests, f"{control.id} is implemented but names no test"
        else:
            assert control.note, f"{control.id} is {control.status}: the note must say what is missing"
        checked = control.pack_rules or control.tests or control.id in rookery_checked
        assert checked or control.status == "planned", f"{control.id}: nothing checks it"


def _cdk_nag_rule_names() -> set[str]:
    """Every rule name of cdk-nag's AwsSolutions and NIST 800-53 rev 5 packs, read from its jsii bundle."""
    [bundle] = (Path(cdk_nag.__file__).parent / "_jsii").glob("cdk-nag@*.jsii.tgz")
    names: set[str] = set()
    with tarfile.open(bundle) as archive:
        for pack, source in (("AwsSolutions", "aws-solutions"), ("NIST.800.53.R5", "nist-800-53-r5")):
            member = archive.extractfile(f"package/lib/packs/{source}.js")
            assert member is not None
            for call in member.read().decode("utf-8").split("this.applyRule(")[1:]:
                override = re.search(r"ruleSuffixOverride: '(\w+)'", call)
                function = re.search(r"rule: \w+\.(\w+)", call)
                name = override or function
                assert name is not None, call[:200]
                names.add(f"{pack}-{name[1]}")
    return names


def _control_tower_rule_names() -> set[str]:
    """Every Control Tower guard rule name the cfn-guard plugin bundles (the names its findings carry)."""
    [bundle] = (Path(cfnguard.__file__).parent / "_jsii").glob("cdk-validator-cfnguard@*.jsii.tgz")
    names: set[str] = set()
    with tarfile.open(bundle) as archive:
        for member in archive.getmembers():
            if member.name.startswith("package/rules/control-tower/") and member.name.endswith(".guard"):
                source = archive.extractfile(member)
                assert source is not None
                names |= set(
                    re.findall(r"^rule (\w+) when is_cfn_template", source.read().decode(), re.MULTILINE)
                )
    return names


def test_every_pack_rule_the_catalogue_names_is_a_rule_of_cdk_nag_or_control_tower() -> None:
    nag, guard = _cdk_nag_rule_names(), _control_tower_rule_names()
    assert "AwsSolutions-IAM5" in nag and "NIST.800.53.R5-S3BucketReplicationEnabled" in nag
    assert "kms_create_grant_aws_service_check" in guard and set(CROSS_STACK_RULES) <= guard
    for control in CONTROLS:
        unknown = sorted(set(control.pack_rules) - nag - guard)
        assert not unknown, f"{control.id}: neither cdk-nag nor Control Tower has rule {unknown}"


def test_docs_controls_md_is_the_rendered_catalogue() -> None:
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == render_markdown(ROOKERY_RULES), (
        f"{controls.DOCUMENT} is stale: run `{controls.COMMAND}` and commit it"
    )


def test_the_document_shows_each_controls_status_and_its_rookery_rules() -> None:
    document = render_markdown(ROOKERY_RULES)
    [d1b] = [line for line in document.splitlines() if line.startswith("| D1b |")]
    assert "rookery: Rookery-D1b, Rookery-D1b2" in d1b and d1b.endswith("| **implemented** |")
    [n7] = [line for line in document.splitlines() if line.startswith("| N7 |")]
    assert "**implemented**: its group has egress on 443 to the interface endpoints and S3 only" in n7
    assert "| Rookery-T6 | T6 |" in document and "`infra/audit/rules/pipeline.py`" in document
    # Each rule claims the controls its check covers: the boundary rule proves I2, not I1.
    rows = {line.split(" | ")[0][2:]: line for line in document.splitlines() if line.startswith("| ")}
    assert "rookery: Rookery-I2<br>" in rows["I2"] and "Rookery-I2" not in rows["I1"]
    assert "rookery: Rookery-N5<br>" in rows["N5"] and "Rookery-N5" not in rows["N4"]


def test_every_control_id_cited_in_code_comments_and_documents_is_in_the_catalogue() -> None:
    cited: dict[str, list[str]] = {}
    for path in _citing_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for reference in CITATION.findall(line):
                cited.setdefault(reference, []).append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert {"D1b", "T1-T6", "N6", "I2"} <= set(cited)  # the scan reads the tree it should
    unknown = {}
    for reference, places in sorted(cited.items()):
        try:
            resolve(reference)
        except UnknownControlError as error:
            unknown[reference] = (str(error), places)
    assert not unknown, unknown


def test_the_citation_pattern_reads_ids_and_ranges_but_not_rule_ids_or_words() -> None:
    text = "controls D1b and T1-T6 (N6); Rookery-D1b2, AwsSolutions-L1, S3, ml.t3.medium, I2."
    assert CITATION.findall(text) == ["D1b", "T1-T6", "N6", "I2"]
