"""Run the real Firehose transform handler for local delivery: ``python worker.py JOB ANSWERS``.

Started by ``emulators.firehose.transform.invoke_transform`` in a fresh process whose environment is the
function's own and whose ``PYTHONPATH`` is ``lambdas/`` and ``contracts/`` only (what the bundle's
root holds: the function's package and ``rookery_contracts``), so importing the handler is a cold
start exactly as in Lambda (and stdout, where Powertools logs, is the function's log). Imports
nothing from rookery. JOB holds the invocations; ANSWERS receives, per invocation, the event sent
and the handler's response, or the error it raised (Firehose would retry, then fail the batch).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LambdaContext:
    """The attributes Powertools reads from the Lambda context object."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def main(job_path: str, answers_path: str) -> int:
    # Imported here: a function that fails its cold start (bad environment) must fail this process.
    from firehose_transform.events import build_firehose_event  # noqa: PLC0415
    from firehose_transform.handler import lambda_handler  # noqa: PLC0415

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    answers: list[dict[str, Any]] = []
    for invocation in job["invocations"]:
        event = build_firehose_event(
            [base64.b64decode(p) for p in invocation["payloads"]],
            arrival=datetime.fromtimestamp(invocation["arrival_ms"] / 1000, tz=UTC),
            delivery_stream_arn=job["delivery_stream_arn"],
            invocation_id=invocation["invocation_id"],
        )
        context = LambdaContext(
            function_name=job["function_name"],
            invoked_function_arn=job["function_arn"],
            aws_request_id=invocation["request_id"],
            log_group_name=f"/aws/lambda/{job['function_name']}",
        )
        try:
            answers.append({"event": event, "response": lambda_handler(event, context)})
        except Exception as exc:  # the function's error, as Lambda reports it to Firehose
            answers.append({"event": event, "error": f"{type(exc).__name__}: {exc}"})
        sys.stdout.flush()
    Path(answers_path).write_text(json.dumps(answers), encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: worker.py JOB ANSWERS")
    sys.exit(main(sys.argv[1], sys.argv[2]))
