"""A training job on SageMaker's contract, shared by the Training step and every tuning trial.

``/opt/ml/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json`` are written (every
hyperparameter a string), each channel is staged under ``/opt/ml/input/data/<channel>``, and
``CheckpointConfig.S3Uri`` is restored into the checkpoint folder before the job starts and
uploaded after it stops, so a job restarted after a spot interruption resumes. Metrics come from
the log with the job's ``MetricDefinitions`` (the last value of each is final). On success the
model folder is packed to ``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from emulators.core import procs
from emulators.core.files import fresh_dir
from emulators.core.sandbox import Sandbox, pack
from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.models import now
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.pipeline.expressions import to_text
from emulators.sagemaker.steps import hosts
from emulators.sagemaker.steps.spot import InterruptPlan, Trigger
from pipelines.contract import CHECKPOINT_LOCAL_PATH
from rookery_contracts.model_layout import MODEL_ARCHIVE


class MetricParser:
    """``MetricDefinitions`` applied to each log line; the last value of each metric is final."""

    def __init__(self, definitions: list[dict[str, Any]]) -> None:
        self.patterns = [(str(d["Name"]), re.compile(str(d["Regex"]))) for d in definitions or []]
        self.final: dict[str, tuple[float, dt.datetime]] = {}
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        for name, pattern in self.patterns:
            match = pattern.search(text)
            if not match:
                continue
            try:
                value = float(match.group(1) if match.groups() else match.group(0))
            except ValueError:
                continue
            with self.lock:
                self.final[name] = (value, now())
                self.counts[name] = self.counts.get(name, 0) + 1

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        return [
            {"MetricName": name, "Value": value, "Timestamp": at.isoformat()}
            for name, (value, at) in sorted(self.final.items())
        ]

    def values(self) -> dict[str, float]:
        return {name: value for name, (value, _) in self.final.items()}


def model_artifact_uri(output_path: str, training_job_name: str) -> str:
    """Where SageMaker puts a training job's model: the tuning step's model URI relies on this layout."""
    return f"{output_path.rstrip('/')}/{training_job_name}/output/{MODEL_ARCHIVE}"


def _write_config(
    sandbox: Sandbox, request: dict[str, Any], name: str, host: str, all_hosts: list[str]
) -> None:
    hyperparameters = {str(k): to_text(v) for k, v in (request.get("HyperParameters") or {}).items()}
    mode = request.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
    channels = {}
    for channel in request.get("InputDataConfig", []) or []:
        source = channel["DataSource"]["S3DataSource"]
        entry = {
            "TrainingInputMode": channel.get("InputMode") or mode,
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        channels[channel["ChannelName"]] = entry
    resources = request.get("ResourceConfig") or {}
    sandbox.write_training_config(
        hyperparameters,
        channels,
        {
            "current_host": host,
            "current_instance_type": resources.get("InstanceType", "local"),
            "hosts": all_hosts,
            "network_interface_name": "eth0",
            "training_job_name": name,
        },
    )


def run_training_job(
    ctx: StepContext,
    request: dict[str, Any],
    name: str,
    sandbox: Path,
    log_path: Path,
    *,
    checkpoint_uri: str | None,
    interrupt: InterruptPlan | None,
    progress: Callable[[str], None] | None = None,
) -> StepResult:
    """Run one training job to the end: ``DescribeTrainingJobResponse``-shaped properties and the
    local metrics (final metric values, interruptions). Raises :class:`StepFailedError` on failure.
    """
    count = int((request.get("ResourceConfig") or {}).get("InstanceCount") or 1)
    names = hosts.host_names(count)
    dirs = hosts.host_dirs(sandbox, count)
    for folder in dirs:
        fresh_dir(folder)
    algorithm = request["AlgorithmSpecification"]
    output_path = request["OutputDataConfig"]["S3OutputPath"]
    spot = bool(request.get("EnableManagedSpotTraining"))
    properties: dict[str, Any] = {
        **request,
        "TrainingJobName": name,
        "TrainingJobArn": ctx.arn("training-job", name),
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "CreationTime": now().isoformat(),
    }
    if request.get("CheckpointConfig") and checkpoint_uri:
        properties["CheckpointConfig"] = {**request["CheckpointConfig"], "S3Uri": checkpoint_uri}
    jobs = [Sandbox(folder) for folder in dirs]
    job = jobs[0]
    for index, host_job in enumerate(jobs):
        _write_config(host_job, request, name, names[index], names)
        for channel in request.get("InputDataConfig", []) or []:
            source = channel["DataSource"]["S3DataSource"]
            target = host_job.channel(channel["ChannelName"])
            ctx.download(
                source["S3Uri"],
                source.get("S3DataType", "S3Prefix"),
                target,
                f"channel {channel['ChannelName']!r}",
            )
            if source.get("S3DataDistributionType") == hosts.SHARDED:
                hosts.keep_share(target, index, count)
    local_checkpoints = None
    host_checkpoints: list[Path] = []
    if checkpoint_uri:
        local = (request.get("CheckpointConfig") or {}).get("LocalPath") or CHECKPOINT_LOCAL_PATH
        host_checkpoints = [host_job.path(local) for host_job in jobs]
        local_checkpoints = host_checkpoints[0]
    argv = ctx.images.command(
        algorithm["TrainingImage"], algorithm.get("ContainerEntrypoint"), default="train"
    )
    argv += [to_text(a) for a in algorithm.get("ContainerArguments", []) or []]
    job_vars = {
        **{k: to_text(v) for k, v in (request.get("Environment") or {}).items()},
        "TRAINING_JOB_NAME": name,
        "TRAINING_JOB_ARN": properties["TrainingJobArn"],
    }
    env = ctx.images.environment(algorithm["TrainingImage"], sandbox, job_vars)
    max_runtime = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    metrics = MetricParser(algorithm.get("MetricDefinitions", []) or [])
    interruptions_left = interrupt.times if interrupt is not None and spot else 0
    interruptions = 0
    trained_seconds = 0.0
    started = now()
    properties["TrainingStartTime"] = started.isoformat()
    host_logs = [hosts.host_log_path(log_path, host) for host in names[1:]]
    with log_path.open("a", encoding="utf-8") as log, ExitStack() as opened:
        peer_logs = [opened.enter_context(path.open("a", encoding="utf-8")) for path in host_logs]
        while True:
            if local_checkpoints is not None and checkpoint_uri:
                # SageMaker copies the checkpoint prefix to every instance before the job starts.
                for folder in host_checkpoints:
                    fresh_dir(folder)
                restored = ctx.s3.list_prefix(checkpoint_uri)
                if restored:
                    for folder in host_checkpoints:
                        ctx.download(checkpoint_uri, "S3Prefix", folder, "checkpoints")
                    log.write(
                        f"[rookery local] restored {len(restored)} checkpoint file(s) from {checkpoint_uri}\n"
                    )
            trigger = Trigger(interrupt, local_checkpoints) if interrupt and interruptions_left else None

            def on_line(text: str, trigger: Trigger | None = trigger) -> None:
                metrics.line(text)
                if trigger is not None:
                    trigger.line(text)

            log.write(f"[rookery local] training job {name}: {' '.join(argv)}\n")
            log.flush()
            properties["SecondaryStatus"] = "Training"
            # MaxRuntimeInSeconds bounds the job's training time across restarts, as on SageMaker.
            remaining = None if max_runtime is None else max(float(max_runtime) - trained_seconds, 0.0)
            with ctx.slots:
                if count == 1:
                    outcome = procs.run(
                        argv,
                        env=env,
                        cwd=sandbox,
                        log=log,
                        max_runtime=remaining,
                        on_line=on_line,
                        interrupt_when=trigger,
                        cancel=ctx.cancel,
                    )
                    outcomes = [outcome]
                else:
                    log.write(
                        f"[rookery local] {count} hosts {names}; the others log to "
                        f"{[str(p) for p in host_logs]}\n"
                    )
                    log.flush()
                    tracker = hosts.collective_env()  # each attempt: new instances, a new tracker
                    outcomes = hosts.run_all(
                        argv,
                        envs=[
                            ctx.images.environment(algorithm["TrainingImage"], d, {**job_vars, **tracker})
                            for d in dirs
                        ],
                        dirs=dirs,
                        logs=[log, *peer_logs],
                        max_runtime=remaining,
                        on_line=on_line,
                        interrupt_when=trigger,
                        cancel=ctx.cancel,
                    )
                    outcome = hosts.job_outcome(outcomes)
            trained_seconds += outcome.seconds
            reasons = [
                j.failure_file.read_text(encoding="utf-8").strip()
                if o.exit_code and j.failure_file.is_file()
                else ""
                for j, o in zip(jobs, outcomes, strict=True)
            ]
            if local_checkpoints is not None and checkpoint_uri:
                uploaded = ctx.s3.upload(local_checkpoints, checkpoint_uri)
                log.write(
                    f"[rookery local] uploaded {len(uploaded)} checkpoint file(s) to {checkpoint_uri}\n"
                )
            if outcome.interrupted and outcome.exit_code != 0 and not outcome.stopped:
                interruptions += 1
                interruptions_left -= 1
                log.write(
                    "[rookery local] spot interruption: the instance was reclaimed (SIGTERM, exit "
                    f"{outcome.exit_code}); restarting the job on a new instance from its checkpoints\n"
                )
                log.flush()
                if progress:
                    progress(f"{name}: spot interruption, restarting from checkpoint")
                for host_dir in dirs:
                    fresh_dir(host_dir / "model")
                    fresh_dir(host_dir / "output")
                continue
            if outcome.interrupted:
                log.write("[rookery local] the job finished before the interruption took effect\n")
            break
    ended = now()
    properties.update(
        {
            "TrainingEndTime": ended.isoformat(),
            "LastModifiedTime": ended.isoformat(),
            "TrainingTimeInSeconds": int((ended - started).total_seconds()),
            "BillableTimeInSeconds": int((ended - started).total_seconds()),
            "FinalMetricDataList": metrics.final_metric_data_list(),
        }
    )
    local_metrics = {
        "final_metrics": metrics.values(),
        "interruptions": interruptions,
        "log": str(log_path),
        **({"hosts": names, "host_logs": [str(log_path), *map(str, host_logs)]} if count > 1 else {}),
    }
    if outcome.exit_code != 0 or outcome.runtime_exceeded or outcome.stopped:
        if outcome.runtime_exceeded:
            properties.update(TrainingJobStatus="Stopped", SecondaryStatus="MaxRuntimeExceeded")
            reason = f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds ({max_runtime} s)"
        elif outcome.stopped:
            properties.update(TrainingJobStatus="Stopped", SecondaryStatus="Stopped")
            reason = "Stopped: the execution was stopped"
        else:
            properties.update(TrainingJobStatus="Failed", SecondaryStatus="Failed")
            written = reasons[0] if count == 1 else hosts.failure_reason(names, reasons)
            reason = written or (
                f"AlgorithmError: the training job exited with code {outcome.exit_code}; see {log_path}"
            )
        properties["FailureReason"] = reason
        raise StepFailedError(reason, properties, local_metrics)
    model_uri = model_artifact_uri(output_path, name)
    archive = job.pack_model(sandbox / "packed")
    ctx.s3.put_file(archive, model_uri)
    output_data = sandbox / "output" / "data"
    if output_data.is_dir() and any(output_data.iterdir()):
        packed = sandbox / "packed" / "output.tar.gz"
        pack(output_data, packed)
        ctx.s3.put_file(packed, f"{output_path.rstrip('/')}/{name}/output/output.tar.gz")
    shutil.rmtree(sandbox / "packed", ignore_errors=True)
    properties.update(
        TrainingJobStatus="Completed",
        SecondaryStatus="Completed",
        ModelArtifacts={"S3ModelArtifacts": model_uri},
    )
    return StepResult(properties, local_metrics)


def run_training(ctx: StepContext) -> StepResult:
    """The Training step: one job named like a pipeline's, checkpoints at CheckpointConfig.S3Uri."""
    name = ctx.job_name
    plan = ctx.interrupt if ctx.interrupt is not None and ctx.interrupt.applies_to(ctx.step_name) else None
    checkpoint_uri = (ctx.args.get("CheckpointConfig") or {}).get("S3Uri")
    return run_training_job(
        ctx,
        ctx.args,
        name,
        ctx.job_dir,
        ctx.log_path,
        checkpoint_uri=checkpoint_uri,
        interrupt=plan,
        progress=ctx.emit,
    )
