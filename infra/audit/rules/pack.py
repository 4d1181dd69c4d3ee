"""The rule model: a check declared once with its id, control, title and fix, and the pack that runs them.

``@rule(...)`` on a check function registers it, with a control of the catalogue
(``infra.audit.controls``); ``infra.audit.rules`` builds ``ROOKERY_RULES`` from every declared rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from infra.audit.controls import Control, UnknownControlError, resolve
from infra.audit.template import Template

Check = Callable[[Template], Iterable[tuple[str, str]]]

PACK_NAME: Final = "Rookery"


@dataclass(frozen=True)
class Rule:
    """One check: ``id`` is ``Rookery-<name>`` (acknowledge as ``Rookery::Rookery-<name>``).

    ``control`` is a control id or a range of ids of the catalogue (``D1b``, ``N1-N4``), as the
    report and the finding descriptions print it.
    """

    id: str
    control: str
    title: str
    fix: str
    check: Check

    @property
    def controls(self) -> tuple[Control, ...]:
        return resolve(self.control)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    logical_id: str
    message: str


@dataclass(frozen=True)
class RulePack:
    name: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"rule ids {duplicates} appear twice in pack {self.name!r}")
        bad = [i for i in ids if not i.startswith(f"{self.name}-")]
        if bad:
            raise ValueError(f"rule ids {bad} must start with '{self.name}-'")

    def extended(self, *rules: Rule) -> RulePack:
        """This pack plus ``rules`` (e.g. a check a test or a later stack adds)."""
        return RulePack(self.name, (*self.rules, *rules))

    def evaluate(self, template: Template) -> list[Finding]:
        return [
            Finding(rule.id, logical_id, message)
            for rule in self.rules
            for logical_id, message in rule.check(template)
        ]


_REGISTERED: list[Rule] = []


def rule(*, id: str, control: str, title: str, fix: str) -> Callable[[Check], Check]:
    """Declare ``check`` a rule of rookery's pack, with its id, control, title and fix beside it.

    The control must be in the catalogue: an unknown one fails at import, naming it.
    """

    def register(check: Check) -> Check:
        try:
            resolve(control)
        except UnknownControlError as error:
            raise UnknownControlError(f"rule {id}: {error}") from None
        _REGISTERED.append(Rule(id, control, title, fix, check))
        return check

    return register


def declared() -> tuple[Rule, ...]:
    """Every rule declared with ``@rule`` so far, in declaration order."""
    return tuple(_REGISTERED)


def in_order(rules: Iterable[Rule], order: Sequence[str]) -> tuple[Rule, ...]:
    """``rules`` in the order ``order`` names them; it must name each of them exactly once."""
    by_id = {r.id: r for r in rules}
    problems = []
    if unlisted := [i for i in by_id if i not in order]:
        problems.append(f"add {unlisted} at its end")
    if unknown := [i for i in order if i not in by_id]:
        problems.append(f"remove {unknown} (no rule declares them)")
    if twice := sorted({i for i in order if order.count(i) > 1}):
        problems.append(f"list {twice} once")
    if problems:
        raise ValueError("the rule order does not match the declared rules: " + "; ".join(problems))
    return tuple(by_id[i] for i in order)
