"""A Processing step: stage the inputs into ``/opt/ml/processing/...``, run the entrypoint, upload outputs.

Properties follow ``DescribeProcessingJobResponse`` (the request as resolved, plus the job's name,
ARN, status, ExitMessage and FailureReason). ExitMessage is ``/opt/ml/output/message``; on a
non-zero exit the FailureReason is that message when the job wrote one.
"""

from __future__ import annotations

import json
from typing import Any

from emulators.core import procs
from emulators.core.files import fresh_dir
from emulators.core.sandbox import Sandbox
from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.models import now
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.pipeline.expressions import to_text


def run_processing(ctx: StepContext) -> StepResult:
    args = ctx.args
    name = ctx.job_name
    sandbox = fresh_dir(ctx.job_dir)
    job = Sandbox(sandbox)
    created = now()
    properties: dict[str, Any] = {
        **args,
        "ProcessingJobName": name,
        "ProcessingJobArn": ctx.arn("processing-job", name),
        "ProcessingJobStatus": "InProgress",
        "CreationTime": created.isoformat(),
    }
    app = args["AppSpecification"]
    for item in args.get("ProcessingInputs", []) or []:
        s3 = item["S3Input"]
        count = ctx.download(
            s3["S3Uri"],
            s3.get("S3DataType", "S3Prefix"),
            job.path(s3["LocalPath"]),
            f"ProcessingInput {item.get('InputName')!r}",
        )
        ctx.emit(f"staged {count} object(s) for input {item.get('InputName')}")
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []) or []:
        job.path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    config = sandbox / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps(properties, indent=2, default=str))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))

    argv = ctx.images.command(app["ImageUri"], app.get("ContainerEntrypoint"), default="")
    argv += [to_text(a) for a in app.get("ContainerArguments", []) or []]
    env = ctx.images.environment(
        app["ImageUri"], sandbox, {k: to_text(v) for k, v in (args.get("Environment") or {}).items()}
    )
    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    with ctx.log_path.open("a", encoding="utf-8") as log, ctx.slots:
        properties["ProcessingStartTime"] = now().isoformat()  # once a job slot is free
        log.write(f"[rookery local] processing job {name}: {' '.join(argv)}\n")
        log.flush()
        outcome = procs.run(argv, env=env, cwd=sandbox, log=log, max_runtime=max_runtime, cancel=ctx.cancel)
        properties["ProcessingEndTime"] = now().isoformat()
    properties["LastModifiedTime"] = properties["ProcessingEndTime"]
    message_file = sandbox / "output" / "message"
    message = message_file.read_text(encoding="utf-8").strip() if message_file.is_file() else None
    if message:
        properties["ExitMessage"] = message
    if outcome.exit_code != 0 or outcome.runtime_exceeded:
        properties["ProcessingJobStatus"] = "Failed"
        if outcome.runtime_exceeded:
            reason = f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds ({max_runtime} s)"
        elif outcome.stopped:
            reason = "Stopped: the execution was stopped"
            properties["ProcessingJobStatus"] = "Stopped"
        else:
            reason = message or (
                f"AlgorithmError: the processing job exited with code {outcome.exit_code}; "
                f"see the log {ctx.log_path}"
            )
        properties["FailureReason"] = reason
        raise StepFailedError(reason, properties)
    for item in args.get("ProcessingOutputConfig", {}).get("Outputs", []) or []:
        out = item["S3Output"]
        ctx.s3.upload(job.path(out["LocalPath"]), out["S3Uri"])
    properties["ProcessingJobStatus"] = "Completed"
    return StepResult(properties, {"log": str(ctx.log_path)})
