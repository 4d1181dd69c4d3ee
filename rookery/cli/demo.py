"""``rookery demo [--stage dev] [--tune] [--home DIR] [--param NAME=VALUE ...]``: the front door.

Synthesizes and audits every stage, ingests the bundled penguins through the real Firehose
transform, runs the stage's pipeline locally (the train variant, or tuning with ``--tune``),
approves the registered version, serves it, scores the test split over HTTP and writes
``<home>/demo/report.html``. Exit codes: 0 every phase passed; 1 a phase failed (the reason is
printed and the report says where it stopped) or the local engine cannot run the stage's
definition; 2 a usage or configuration error (nothing ran).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rookery.cli.errors import fail, reported
from rookery.cli.options import HomeOption, ParamOption, StageOption, local_home
from rookery_contracts.evaluation import THRESHOLD_PATH, THRESHOLD_RULE_PATH, value_at

if TYPE_CHECKING:
    from emulators.sagemaker import StepEvent
    from infra.audit.run import AuditResult
    from rookery.demo.report import Phase
    from rookery.demo.run import DemoResult

# soft_wrap: long paths and reasons stay on one line in `make` output and CI logs (no 80-column cut).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_STEP_STYLE = {"Succeeded": "green", "Failed": "bold red", "Skipped": "dim", "NotExecuted": "dim"}


class ConsoleUI:
    """Progress as plain lines (readable in a terminal, in `make` output and in CI logs)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}  # step name -> when it started executing
        self._not_started: list[str] = []  # steps the engine never started (the execution had failed)

    def phase(self, number: int, total: int, name: str, title: str) -> None:
        out.print(f"\n[bold]{number}/{total}  {escape(title)}[/bold]")

    def note(self, text: str) -> None:
        out.print(f"    {escape(text)}")

    def audited(self, audit: AuditResult) -> None:
        from rookery.demo.report import shown_path  # noqa: PLC0415 - loaded by the demo already

        verdict = "[green]passed[/green]" if audit.passed else "[bold red]FAILED[/bold red]"
        stacks = ", ".join(f"{s.name} ({s.resources})" for s in audit.stacks) or "no stacks"
        out.print(
            f"    {audit.stage:<6} {verdict}  {escape(stacks)}; {audit.unacknowledged} unacknowledged, "
            f"{audit.acknowledged} acknowledged with reasons, {audit.cfn_lint_errors} cfn-lint errors "
            f"[dim]({audit.seconds:.0f} s, {escape(shown_path(audit.report_path))})[/dim]"
        )

    def step(self, event: StepEvent) -> None:
        name = escape(f"{event.step_name:<16}")
        message = escape(event.message or "")
        if event.status in ("Starting", "Executing"):
            if event.step_name not in self._started:
                self._started[event.step_name] = time.monotonic()
                out.print(f"    {name} [cyan]Executing[/cyan]")
            if message:
                out.print(f"    {'':<16} [dim]{message}[/dim]")
            return
        if event.status == "NotExecuted":
            self._not_started.append(event.step_name)
            return
        started = self._started.pop(event.step_name, None)
        took = f" {time.monotonic() - started:.1f} s" if started is not None else ""
        style = _STEP_STYLE.get(event.status, "cyan")
        out.print(f"    {name} [{style}]{event.status}[/{style}]{took}{f'  {message}' if message else ''}")

    def done(self, phase: Phase) -> None:
        if self._not_started:
            out.print(f"    [dim]not started: {escape(', '.join(sorted(self._not_started)))}[/dim]")
            self._not_started.clear()
        seconds = f"{phase.seconds:.1f} s" if phase.seconds is not None else ""
        if phase.status == "passed":
            out.print(f"    [green]done[/green] {seconds}: {escape(phase.detail)}")
        else:
            out.print(f"    [bold red]failed[/bold red] {seconds}: {escape(phase.detail)}")


def _summary(result: DemoResult) -> None:
    data = result.data
    table = Table(title="rookery demo", show_header=True, header_style="bold", title_justify="left")
    table.add_column("phase")
    table.add_column("result")
    table.add_column("time", justify="right")
    for phase in data.phases:
        style = {"passed": "green", "failed": "bold red"}.get(phase.status, "dim")
        seconds = f"{phase.seconds:.1f} s" if phase.seconds is not None else "-"
        table.add_row(phase.name, f"[{style}]{phase.status}[/{style}]", seconds)
    out.print()
    out.print(table)
    facts = []
    if data.delivery:
        facts.append(
            f"ingested {data.delivery.ok} records ({data.delivery.failed} rejected to the error prefix)"
        )
    auc = next((m.value for m in data.metrics if m.key == "auc"), None)
    if auc is not None and data.evaluation:
        threshold = float(value_at(data.evaluation, THRESHOLD_PATH))
        rule = value_at(data.evaluation, THRESHOLD_RULE_PATH)
        facts.append(f"test AUC {auc:.3f}, threshold {threshold:.3f} ({rule})")
    if data.gate and data.gate.passed is not None:
        facts.append("gate passed" if data.gate.passed else "gate FAILED")
    if data.package:
        facts.append(f"model {data.package.ref} {data.package.approval_status}")
    if data.scoring:
        facts.append(
            f"{data.scoring.records} test records scored over HTTP, {data.scoring.accuracy:.1%} correct, "
            f"{data.scoring.labels_agreeing_with_transform}/{data.scoring.records} equal to batch transform"
        )
    for fact in facts:
        out.print(f"  - {escape(fact)}")
    out.print(f"\nReport: [bold]{escape(str(result.report_path))}[/bold]")
    out.print(f"        open {result.report_path.resolve().as_uri()} in a browser (it works offline)")


def demo(
    stage: StageOption = "dev",
    tune: Annotated[
        bool, typer.Option("--tune/--no-tune", help="run the tuning variant instead of a single training job")
    ] = False,
    home: HomeOption = None,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit/--no-audit",
            help="synthesize and audit every stage first (the slowest phase); --no-audit skips it",
        ),
    ] = True,
    param: ParamOption = None,
) -> None:
    # Imported here: every `rookery` command loads this module, and the demo's imports are heavy.
    from emulators.sagemaker.exceptions import UnsupportedDefinition  # noqa: PLC0415
    from rookery.demo.run import DemoOptions, prepare, run_demo  # noqa: PLC0415

    options = DemoOptions(
        stage=stage, tune=tune, home=local_home(home), params=tuple(param or ()), audit=None if audit else ()
    )
    out.print(
        f"rookery demo: stage [bold]{escape(stage)}[/bold], {'tune' if tune else 'train'} variant, "
        f"home {escape(str(options.home.root))}"
    )
    with reported():
        try:
            prepared = prepare(options)
        except UnsupportedDefinition as exc:
            fail(f"the local engine cannot run the {stage} definition: {exc}", code=1)
    result = run_demo(prepared, ConsoleUI())
    _summary(result)
    if not result.passed:
        headline = (result.failure or "").splitlines()[0]
        err.print(f"\n[bold red]rookery demo failed[/bold red] at {escape(headline)}")
        err.print(f"The details are above and in the report: {escape(str(result.report_path))}")
        raise typer.Exit(1)
