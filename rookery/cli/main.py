"""The ``rookery`` command: one face over config, pipelines, the local engine and the audit."""

from __future__ import annotations

import typer

from rookery.cli import audit, data, demo, local, pipeline

app = typer.Typer(
    name="rookery",
    help="A secure SageMaker ML platform as code.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(
    pipeline.app, name="pipeline", help="Render, validate, upsert, start and watch the SageMaker pipeline."
)
local.app.add_typer(
    data.raw_app, name="raw", help="List or remove the objects in the stage's local raw bucket."
)
local.app.command("clean", help="Remove old executions' intermediate data; records and registry stay.")(
    data.clean
)
app.add_typer(local.app, name="local", help="Run the pipeline on this machine: no AWS account, no Docker.")
app.command("audit", help="Synthesize a stage and write the security reviewer's report.")(audit.audit)
app.command(
    "demo", help="The front door: synthesize and audit, run the pipeline locally, serve, score, report."
)(demo.demo)
