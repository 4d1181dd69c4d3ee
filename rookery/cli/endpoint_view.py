"""How the local endpoint and its deployments look on a terminal: DescribeEndpoint and timelines.

Rendering only: the records come from ``emulators.sagemaker_runtime`` (``endpoint.json`` and the
deployment records), in SageMaker's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "InService": "green",
    "Creating": "yellow",
    "Updating": "yellow",
    "RollingBack": "bold red",
    "Failed": "bold red",
    "Succeeded": "green",
    "InProgress": "yellow",
}


def styled(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def time_scale_note(scale: float) -> str | None:
    """The line every command prints when waits are compressed (never silently)."""
    if scale == 1:
        return None
    return (
        f"time scale {scale:g}x: every deployment wait and alarm period is divided by {scale:g} "
        "(a local-only convenience; SageMaker always runs them in real time)"
    )


def shares(entry: Mapping[str, Any]) -> str:
    found = entry.get("Shares") or {}
    return " ".join(f"{role} {share:.0%}" for role, share in found.items())


def timeline_line(entry: Mapping[str, Any]) -> str:
    """One timeline entry: time since the start, event, endpoint status, traffic shares, detail."""
    return (
        f"[{float(entry.get('Seconds', 0)):7.2f} s] {entry.get('Event', ''):<18} "
        f"{entry.get('EndpointStatus', ''):<11} {shares(entry):<20} {entry.get('Detail', '')}"
    )


def deployment_summary(deployment: Mapping[str, Any]) -> RenderableType:
    target = (deployment.get("Target") or {}).get("ModelPackage")
    previous = (deployment.get("Previous") or {}).get("ModelPackage")
    head = Text.assemble(
        f"deployment {deployment.get('DeploymentId')} ({deployment.get('Action')} {previous} -> {target}): ",
        styled(str(deployment.get("Status"))),
    )
    lines: list[RenderableType] = [head, Text(f"  {deployment.get('Reason') or deployment.get('Decision')}")]
    note = time_scale_note(float(deployment.get("TimeScale") or 1))
    if note:
        lines.append(Text(f"  {note}", style="dim"))
    table = Table(title="timeline", title_justify="left", show_edge=False)
    for column in ("s", "event", "status", "traffic", "detail"):
        table.add_column(column, overflow="fold", no_wrap=column in ("s", "event"))
    for entry in deployment.get("Timeline") or []:
        table.add_row(
            f"{float(entry.get('Seconds', 0)):.2f}",
            str(entry.get("Event")),
            styled(str(entry.get("EndpointStatus"))),
            shares(entry),
            str(entry.get("Detail")),
        )
    lines.append(table)
    return Group(*lines)


def describe(record: Mapping[str, Any]) -> RenderableType:
    """``rookery local endpoint describe``: the endpoint as DescribeEndpoint shows it, then deployments."""
    summary = Table(show_header=False, title=f"endpoint {record.get('EndpointName')}", title_justify="left")
    summary.add_column("field", style="bold", no_wrap=True)
    summary.add_column("value", overflow="fold")
    summary.add_row("EndpointArn", str(record.get("EndpointArn")))
    summary.add_row("EndpointStatus", styled(str(record.get("EndpointStatus"))))
    if record.get("FailureReason"):
        summary.add_row("FailureReason", str(record["FailureReason"]))
    summary.add_row("serving", f"{record.get('ModelPackage')} ({record.get('ModelPackageArn')})")
    summary.add_row("URL", f"{record.get('Url')}/endpoints/{record.get('EndpointName')}/invocations")
    summary.add_row("CreationTime", str(record.get("CreationTime")))
    summary.add_row("LastModifiedTime", str(record.get("LastModifiedTime")))
    capture = record.get("DataCaptureConfig")
    if capture:
        summary.add_row(
            "DataCaptureConfig",
            f"{capture.get('CurrentSamplingPercentage')}% to {capture.get('DestinationS3Uri')}",
        )
    config = (record.get("LastDeploymentConfig") or {}).get("BlueGreenUpdatePolicy") or {}
    routing = config.get("TrafficRoutingConfiguration") or {}
    size = routing.get("CanarySize") or routing.get("LinearStepSize")
    summary.add_row(
        "LastDeploymentConfig",
        f"{routing.get('Type')}"
        + (f" {size.get('Value')} instance(s)" if size else "")
        + f", wait {routing.get('WaitIntervalInSeconds')} s, termination wait "
        f"{config.get('TerminationWaitInSeconds')} s, "
        f"timeout {config.get('MaximumExecutionTimeoutInSeconds')} s",
    )
    alarms = ((record.get("LastDeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}).get("Alarms")
    summary.add_row("rollback alarms", ", ".join(a["AlarmName"] for a in alarms or []) or "none")
    note = time_scale_note(float(record.get("TimeScale") or 1))
    if note:
        summary.add_row("time scale", note)
    variants = Table(title="ProductionVariants", title_justify="left")
    for column in ("VariantName", "CurrentWeight", "DesiredWeight", "CurrentInstanceCount", "image"):
        variants.add_column(column, overflow="fold")
    for variant in record.get("ProductionVariants") or []:
        images = variant.get("DeployedImages") or [{}]
        variants.add_row(
            str(variant.get("VariantName")),
            f"{variant.get('CurrentWeight')}",
            f"{variant.get('DesiredWeight')}",
            f"{variant.get('CurrentInstanceCount')}",
            str(images[0].get("SpecifiedImage")),
        )
    fleets = Table(title="fleets (traffic within the variant)", title_justify="left")
    for column in ("role", "fleet", "model package", "traffic", "in flight"):
        fleets.add_column(column, overflow="fold")
    for fleet in record.get("Fleets") or []:
        fleets.add_row(
            str(fleet.get("Role")),
            str(fleet.get("Fleet")),
            str(fleet.get("ModelPackage")),
            f"{float(fleet.get('TrafficShare') or 0):.0%}",
            str(fleet.get("InFlight")),
        )
    parts: list[RenderableType] = [summary, variants, fleets]
    current = record.get("CurrentDeployment")
    last = record.get("LastDeployment")
    if current:
        parts.append(Text("current deployment:", style="bold"))
        parts.append(deployment_summary(current))
    if last:
        parts.append(Text("last deployment:", style="bold"))
        parts.append(deployment_summary(last))
    if not current and not last:
        parts.append(Text("no deployment yet: approve a newer version of the group to deploy it"))
    return Group(*parts)
