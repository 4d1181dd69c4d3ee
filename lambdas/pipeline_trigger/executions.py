"""Start the pipeline at most once per object: look for an execution carrying the token, then start.

Two layers, because neither alone is enough everywhere:

1. ``StartPipelineExecution`` gets the deterministic ``ClientRequestToken``. SageMaker treats a repeated
   token as the same request, which also covers two deliveries racing each other.
2. Before starting, the executions created since the event's time are searched for the token (it is in
   each execution's description). A redelivery hours later, after the service may have forgotten the
   token, starts nothing; and this is the layer a local emulator such as moto (which records the token
   but does not deduplicate on it) can prove.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pipeline_trigger.plan import Start, token_marker


@dataclass(frozen=True)
class Started:
    status: Literal["started", "duplicate"]
    execution_arn: str


def find_execution(client: Any, start: Start) -> str | None:
    """The ARN of an execution already started for ``start``'s token, newest first; None if there is none."""
    marker = token_marker(start.client_request_token)
    pages = client.get_paginator("list_pipeline_executions").paginate(
        PipelineName=start.pipeline_name,
        CreatedAfter=start.created_after,
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    for page in pages:
        for summary in page.get("PipelineExecutionSummaries", []):
            if marker in (summary.get("PipelineExecutionDescription") or ""):
                return str(summary["PipelineExecutionArn"])
    return None


def start_once(client: Any, start: Start) -> Started:
    """Start the pipeline unless an execution for this object exists already."""
    existing = find_execution(client, start)
    if existing:
        return Started("duplicate", existing)
    response = client.start_pipeline_execution(
        PipelineName=start.pipeline_name,
        PipelineParameters=[{"Name": name, "Value": value} for name, value in start.parameters],
        PipelineExecutionDescription=start.description,
        ClientRequestToken=start.client_request_token,
    )
    return Started("started", str(response["PipelineExecutionArn"]))
