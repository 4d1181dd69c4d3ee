"""Start the pipeline at most once per cause, and an alarm's run at most once per interval.

Idempotency has two layers, because neither alone is enough everywhere:

1. ``StartPipelineExecution`` gets the deterministic ``ClientRequestToken``. SageMaker treats a repeated
   token as the same request, which also covers two deliveries racing each other.
2. Before starting, the executions created since the event's time are searched for the token (it is in
   each execution's description). A redelivery hours later, after the service may have forgotten the
   token, starts nothing; and this is the layer a local emulator such as moto (which records the token
   but does not deduplicate on it) can prove.

The rate limit of an alarm's run reads the same listing: a run the trigger started inside the window
(``plan.latest_trigger_run``) holds it back. Every page of the listing is read and every summary is
judged by its own times, so neither the service's sort order nor its ``CreatedAfter`` filter (which
moto ignores) decides anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pipeline_trigger.plan import RecentRun, Start, latest_trigger_run, token_marker


@dataclass(frozen=True)
class Started:
    status: Literal["started", "duplicate"]
    execution_arn: str


@dataclass(frozen=True)
class RateLimited:
    """An alarm's run was not started: ``recent`` is the trigger's run inside the window."""

    recent: RecentRun


def list_executions(client: Any, pipeline_name: str, created_after: datetime) -> Iterator[Mapping[str, Any]]:
    """Every execution summary the service returns for executions created after ``created_after``."""
    pages = client.get_paginator("list_pipeline_executions").paginate(
        PipelineName=pipeline_name,
        CreatedAfter=created_after,
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    for page in pages:
        yield from page.get("PipelineExecutionSummaries", [])


def find_execution(summaries: list[Mapping[str, Any]], start: Start) -> str | None:
    """The ARN of an execution already started for ``start``'s token; None if there is none."""
    marker = token_marker(start.client_request_token)
    for summary in summaries:
        if marker in (summary.get("PipelineExecutionDescription") or ""):
            return str(summary["PipelineExecutionArn"])
    return None


def start_once(client: Any, start: Start) -> Started | RateLimited:
    """Start the pipeline unless an execution for this cause exists already or the rate limit holds."""
    summaries = list(list_executions(client, start.pipeline_name, start.listed_after))
    existing = find_execution(summaries, start)
    if existing:
        return Started("duplicate", existing)
    if start.rate_limit:
        recent = latest_trigger_run(summaries, start.rate_limit.since)
        if recent:
            return RateLimited(recent)
    response = client.start_pipeline_execution(
        PipelineName=start.pipeline_name,
        PipelineParameters=[{"Name": name, "Value": value} for name, value in start.parameters],
        PipelineExecutionDescription=start.description,
        ClientRequestToken=start.client_request_token,
    )
    return Started("started", str(response["PipelineExecutionArn"]))
