"""The transform Lambda as Firehose invokes it: the real handler, once per batch, in a fresh process.

The process has exactly the function's environment and, as its import path, what the bundle's root
holds (``lambdas/`` and ``contracts/``), so importing the handler is a cold start as in Lambda, and
its stdout (where Powertools logs) is the function's log. ``worker.py`` is what runs in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from emulators.firehose.exceptions import IngestionError
from stage.paths import CONTRACTS_DIR, LAMBDAS_DIR

if TYPE_CHECKING:
    from emulators.firehose.models import DeliveryStream

TRANSFORM_PACKAGE: Final = "firehose_transform"
WORKER: Final = Path(__file__).with_name("worker.py")


def invoke_transform(
    stream: DeliveryStream, invocations: Sequence[Mapping[str, Any]], *, log_path: Path
) -> list[dict[str, Any]]:
    """Run the real handler once per invocation in one fresh process with the function's environment.

    Each invocation is ``{"payloads": [base64, ...], "arrival_ms", "invocation_id", "request_id"}``;
    the worker builds the event with ``firehose_transform.events.build_firehose_event``. Returns one
    ``{"event", "response"}`` (or ``{"event", "error"}`` when the handler raised) per invocation.
    """
    if not (LAMBDAS_DIR / TRANSFORM_PACKAGE).is_dir():
        raise IngestionError(
            f"the transform function's code is not at {LAMBDAS_DIR / TRANSFORM_PACKAGE}; "
            "run the demo from a rookery checkout (the Lambda ships from lambdas/, not inside the wheel)"
        )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ROOKERY_", "POWERTOOLS_", "AWS_", "PYTHON", "_X_AMZN", "LAMBDA_"))
    }
    env.update(stream.function_environment())
    # The bundle's root holds the function's package and rookery_contracts.
    env["PYTHONPATH"] = os.pathsep.join([str(LAMBDAS_DIR), str(CONTRACTS_DIR)])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rookery-firehose-") as tmp:
        job = Path(tmp) / "job.json"
        answers = Path(tmp) / "answers.json"
        job.write_text(
            json.dumps(
                {
                    "delivery_stream_arn": stream.arn,
                    "function_name": stream.function_name,
                    "function_arn": stream.function_arn,
                    "invocations": list(invocations),
                }
            ),
            encoding="utf-8",
        )
        with log_path.open("w", encoding="utf-8") as log:
            # -P: the worker's own folder (emulators/firehose) must not shadow modules the function imports.
            done = subprocess.run(
                [sys.executable, "-P", str(WORKER), str(job), str(answers)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
        if done.returncode != 0 or not answers.is_file():
            tail = "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-15:])
            raise IngestionError(
                f"the {TRANSFORM_PACKAGE} function failed to start or crashed (exit {done.returncode}); "
                f"its log is {log_path}:\n{tail}"
            )
        result: list[dict[str, Any]] = json.loads(answers.read_text(encoding="utf-8"))
    if len(result) != len(invocations):
        raise IngestionError(
            f"the worker answered {len(result)} of {len(invocations)} invocations; see {log_path}"
        )
    return result


def logged_reasons(log_path: Path) -> dict[tuple[str, str], str]:
    """(request id, record id) -> reason, from the handler's structured 'record failed validation' lines."""
    reasons: dict[tuple[str, str], str] = {}
    for line in log_path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "record_id" in entry and "reason" in entry:
            reasons[(str(entry.get("function_request_id", "")), str(entry["record_id"]))] = str(
                entry["reason"]
            )
    return reasons
