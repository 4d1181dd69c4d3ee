"""A Processing step: stage the inputs into ``/opt/ml/processing/...``, run the entrypoint, upload outputs.

With ``InstanceCount`` N the job runs as N host processes (:mod:`emulators.sagemaker.steps.hosts`): each
host has its own sandbox and ``/opt/ml/config/resourceconfig.json``, gets its share of every
``ShardedByS3Key`` input and the whole of every other input, and uploads its output folders to the
same S3 prefixes, as every instance of a SageMaker processing job does (a file two hosts write under
the same name is overwritten by the later upload; the log names each such object).

Properties follow ``DescribeProcessingJobResponse`` (the request as resolved, plus the job's name,
ARN, status, ExitMessage and FailureReason). ExitMessage is ``/opt/ml/output/message``; on a
non-zero exit the FailureReason is that message when the job wrote one (several hosts: the first host
whose reason is its own, naming the host).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

from emulators.core.files import fresh_dir
from emulators.core.sandbox import Sandbox
from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.models import now
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.pipeline.expressions import to_text
from emulators.sagemaker.steps import hosts


def _message(job: Sandbox) -> str:
    """The host's ExitMessage ("" when it wrote none)."""
    path = job.base / "output" / "message"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def run_processing(ctx: StepContext) -> StepResult:
    args = ctx.args
    name = ctx.job_name
    count = int((args.get("ProcessingResources") or {}).get("ClusterConfig", {}).get("InstanceCount") or 1)
    names = hosts.host_names(count)
    dirs = [fresh_dir(folder) for folder in hosts.host_dirs(ctx.job_dir, count)]
    jobs = [Sandbox(folder) for folder in dirs]
    created = now()
    properties: dict[str, Any] = {
        **args,
        "ProcessingJobName": name,
        "ProcessingJobArn": ctx.arn("processing-job", name),
        "ProcessingJobStatus": "InProgress",
        "CreationTime": created.isoformat(),
    }
    app = args["AppSpecification"]
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", []) or []
    for index, job in enumerate(jobs):
        on = f" on {names[index]}" if count > 1 else ""
        for item in args.get("ProcessingInputs", []) or []:
            s3 = item["S3Input"]
            target = job.path(s3["LocalPath"])
            staged = ctx.download(
                s3["S3Uri"],
                s3.get("S3DataType", "S3Prefix"),
                target,
                f"ProcessingInput {item.get('InputName')!r}",
            )
            if s3.get("S3DataDistributionType") == hosts.SHARDED:
                staged = hosts.keep_share(target, index, count)
            ctx.emit(f"staged {staged} object(s) for input {item.get('InputName')}{on}")
        for item in outputs:
            job.path(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        config = job.base / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "processingjobconfig.json").write_text(json.dumps(properties, indent=2, default=str))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": names[index], "hosts": names})
        )

    argv = ctx.images.command(app["ImageUri"], app.get("ContainerEntrypoint"), default="")
    argv += [to_text(a) for a in app.get("ContainerArguments", []) or []]
    job_vars = {k: to_text(v) for k, v in (args.get("Environment") or {}).items()}
    max_runtime = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    host_logs = [hosts.host_log_path(ctx.log_path, host) for host in names[1:]]
    with ctx.log_path.open("a", encoding="utf-8") as log, ExitStack() as opened, ctx.slots:
        peer_logs = [opened.enter_context(path.open("a", encoding="utf-8")) for path in host_logs]
        properties["ProcessingStartTime"] = now().isoformat()  # once a job slot is free
        log.write(f"[rookery local] processing job {name}: {' '.join(argv)}\n")
        if count > 1:
            log.write(
                f"[rookery local] {count} hosts {names}; the others log to {[str(p) for p in host_logs]}\n"
            )
        log.flush()
        outcomes = hosts.run_all(
            argv,
            envs=[ctx.images.environment(app["ImageUri"], folder, job_vars) for folder in dirs],
            dirs=dirs,
            logs=[log, *peer_logs],
            max_runtime=max_runtime,
            on_line=None,
            interrupt_when=None,
            cancel=ctx.cancel,
        )
        outcome = hosts.job_outcome(outcomes)
        properties["ProcessingEndTime"] = now().isoformat()
        properties["LastModifiedTime"] = properties["ProcessingEndTime"]
        messages = [_message(job) for job in jobs]
        message = next((m for m in messages if m), "")
        if message:
            properties["ExitMessage"] = message if count == 1 else hosts.failure_reason(names, messages)
        local_metrics: dict[str, Any] = {
            "log": str(ctx.log_path),
            **({"hosts": names, "host_logs": [str(ctx.log_path), *map(str, host_logs)]} if count > 1 else {}),
        }
        if outcome.exit_code != 0 or outcome.runtime_exceeded:
            properties["ProcessingJobStatus"] = "Failed"
            if outcome.runtime_exceeded:
                reason = f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds ({max_runtime} s)"
            elif outcome.stopped:
                reason = "Stopped: the execution was stopped"
                properties["ProcessingJobStatus"] = "Stopped"
            else:
                failed = [m if o.exit_code else "" for m, o in zip(messages, outcomes, strict=True)]
                reason = (
                    hosts.failure_reason(names, [m or "" for m in failed]) if count > 1 else message or ""
                )
                reason = reason or (
                    f"AlgorithmError: the processing job exited with code {outcome.exit_code}; "
                    f"see the log {ctx.log_path}"
                )
            properties["FailureReason"] = reason
            raise StepFailedError(reason, properties, local_metrics)
        written: dict[str, str] = {}
        for index, job in enumerate(jobs):
            for item in outputs:
                out = item["S3Output"]
                for uri in ctx.s3.upload(job.path(out["LocalPath"]), out["S3Uri"]):
                    if uri in written:
                        log.write(
                            f"[rookery local] {names[index]} overwrote {uri} that {written[uri]} uploaded "
                            "(SageMaker's instances share an output prefix: name files per host)\n"
                        )
                    written[uri] = names[index]
    properties["ProcessingJobStatus"] = "Completed"
    return StepResult(properties, local_metrics)
