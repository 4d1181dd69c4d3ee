"""A Tuning step: trials within the declared ranges, the best picked by the objective.

Local tuning is a seeded random search (Latin hypercube: each range is cut into as many strata as
there are trials, and every stratum is used once), not SageMaker's Bayesian optimizer or
Hyperband: for the same definition and seed (``HyperParameterTuningJobConfig.RandomSeed``, else 0)
it tries the same values. Up to ``MaxNumberOfTrainingJobs`` trials run, at most
``min(MaxParallelTrainingJobs, cores)`` at once. Each trial is a training job named
``<tuning job>-<NNN>-<8 hex>`` whose model lands at ``<S3OutputPath>/<trial>/output/model.tar.gz``,
which is what a definition builds from ``BestTrainingJob.TrainingJobName``. Properties follow
``DescribeHyperParameterTuningJobResponse`` plus ``TrainingJobSummaries`` (best first).
"""

from __future__ import annotations

import math
import random
import secrets
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from emulators.sagemaker.exceptions import StepFailedError
from emulators.sagemaker.models import now
from emulators.sagemaker.pipeline.context import StepContext, StepResult
from emulators.sagemaker.responses import random_id
from emulators.sagemaker.steps.training import run_training_job

DEFAULT_SEED: Final = 0


def _value(kind: str, spec: Mapping[str, Any], u: float) -> str:
    """The value at quantile ``u`` of one range, as the string SageMaker passes to the job."""
    if kind == "CategoricalParameterRanges":
        values = list(spec["Values"])
        return str(values[min(int(u * len(values)), len(values) - 1)])
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = spec.get("ScalingType", "Auto")
    if kind == "IntegerParameterRanges":
        if scaling == "Logarithmic":
            picked = math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low)))
        else:  # Linear; Auto is treated as Linear locally
            picked = low + u * (high - low + 1)
        return str(int(min(max(math.floor(picked), low), high)))
    if scaling == "Logarithmic":
        number = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    elif scaling == "ReverseLogarithmic":
        number = 1 - math.exp(math.log(1 - low) + u * (math.log(1 - high) - math.log(1 - low)))
    else:
        number = low + u * (high - low)
    return repr(min(max(float(f"{number:.6g}"), low), high))


def sample(ranges: Mapping[str, Any], count: int, seed: int) -> list[dict[str, str]]:
    """``count`` hyperparameter sets: a Latin hypercube over every declared range."""
    rng = random.Random(seed)
    dims = [
        (kind, spec)
        for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
        for spec in ranges.get(kind, []) or []
    ]
    columns = []
    for _ in dims:
        strata = list(range(count))
        rng.shuffle(strata)
        columns.append([(s + rng.random()) / count for s in strata])
    return [
        {str(spec["Name"]): _value(kind, spec, columns[d][i]) for d, (kind, spec) in enumerate(dims)}
        for i in range(count)
    ]


def run_tuning(ctx: StepContext) -> StepResult:
    args = ctx.args
    config = args["HyperParameterTuningJobConfig"]
    definition = args["TrainingJobDefinition"]
    limits = config["ResourceLimits"]
    total = int(limits["MaxNumberOfTrainingJobs"])
    parallel = max(1, min(int(limits["MaxParallelTrainingJobs"]), ctx.max_parallel, total))
    objective = config["HyperParameterTuningJobObjective"]
    metric, direction = str(objective["MetricName"]), str(objective["Type"])
    target = (config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue")
    seed = int(config.get("RandomSeed", DEFAULT_SEED))
    tuning_name = f"{ctx.step_name.lower()[:12]}-{ctx.execution_id}-{random_id(4)}"[:32].strip("-")
    created = now()
    plans = sample(config.get("ParameterRanges") or {}, total, seed)
    plan = ctx.interrupt if ctx.interrupt is not None and ctx.interrupt.applies_to(ctx.step_name) else None
    trial_logs = ctx.log_dir / ctx.step_name
    trial_logs.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    summaries: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    reached = threading.Event()
    ctx.emit(f"{total} trial(s), {parallel} at a time, random search (seed {seed})")

    def better(a: float, b: float) -> bool:
        return a > b if direction == "Maximize" else a < b

    def trial(index: int) -> None:
        if reached.is_set() or ctx.cancel.is_set():
            return
        tuned = plans[index]
        name = f"{tuning_name}-{index + 1:03d}-{secrets.token_hex(4)}"
        request = {
            key: value
            for key, value in definition.items()
            if key
            not in ("StaticHyperParameters", "HyperParameterRanges", "DefinitionName", "TuningObjective")
        }
        request["HyperParameters"] = {
            **(definition.get("StaticHyperParameters") or {}),
            **tuned,
            "_tuning_objective_metric": metric,
        }
        checkpoint = (definition.get("CheckpointConfig") or {}).get("S3Uri")
        summary: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": ctx.arn("training-job", name),
            "TuningJobName": tuning_name,
            "CreationTime": now().isoformat(),
            "TunedHyperParameters": tuned,
        }
        record: dict[str, Any] = {"name": name, "hyperparameters": tuned}
        try:
            result = run_training_job(
                ctx,
                request,
                name,
                ctx.job_dir / name,
                trial_logs / f"{name}.log",
                checkpoint_uri=f"{checkpoint.rstrip('/')}/{name}" if checkpoint else None,
                interrupt=plan,
                progress=ctx.emit,
            )
            props, local = result.properties, result.metrics
        except StepFailedError as exc:
            props, local = dict(exc.properties), dict(exc.metrics)
        value = local.get("final_metrics", {}).get(metric)
        summary.update(
            {
                "TrainingStartTime": props.get("TrainingStartTime"),
                "TrainingEndTime": props.get("TrainingEndTime"),
                "TrainingJobStatus": props.get("TrainingJobStatus", "Failed"),
            }
        )
        if props.get("FailureReason"):
            summary["FailureReason"] = props["FailureReason"]
        completed = summary["TrainingJobStatus"] == "Completed"
        if completed and value is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": direction,
                "MetricName": metric,
                "Value": value,
            }
            summary["ObjectiveStatus"] = "Succeeded"
        else:
            summary["ObjectiveStatus"] = "Failed"
            if completed:
                summary["FailureReason"] = f"the job's log never matched the objective metric {metric!r}"
        record.update(
            status=summary["TrainingJobStatus"],
            objective=value if summary["ObjectiveStatus"] == "Succeeded" else None,
            failure_reason=summary.get("FailureReason"),
            interruptions=local.get("interruptions", 0),
            log=local.get("log"),
        )
        with lock:
            summaries.append(summary)
            trials.append(record)
            done = len(summaries)
            scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
            best = None
            for s in scored:
                v = s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                if best is None or better(v, best):
                    best = v
        if target is not None and value is not None and not better(float(target), value):
            reached.set()
        shown = "failed" if record["objective"] is None else f"{metric}={value:.6g}"
        ctx.emit(f"trial {done}/{total} {name}: {shown}; best {best if best is None else f'{best:.6g}'}")

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix=f"{ctx.step_name}-trial") as pool:
        list(pool.map(trial, range(total)))

    scored = [s for s in summaries if s["ObjectiveStatus"] == "Succeeded"]
    reverse = direction == "Maximize"
    scored.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=reverse)
    failed = [s for s in summaries if s["ObjectiveStatus"] != "Succeeded"]
    ordered = scored + sorted(failed, key=lambda s: s["TrainingJobName"])
    ended = now()
    completed = sum(1 for s in summaries if s["TrainingJobStatus"] == "Completed")
    properties: dict[str, Any] = {
        "HyperParameterTuningJobName": tuning_name,
        "HyperParameterTuningJobArn": ctx.arn("hyper-parameter-tuning-job", tuning_name),
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
        "HyperParameterTuningJobStatus": "Completed" if scored else "Failed",
        "CreationTime": created.isoformat(),
        "HyperParameterTuningEndTime": ended.isoformat(),
        "LastModifiedTime": ended.isoformat(),
        "TrainingJobStatusCounters": {
            "Completed": completed,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": len(summaries) - completed,
            "Stopped": 0,
        },
        "ObjectiveStatusCounters": {"Succeeded": len(scored), "Pending": 0, "Failed": len(failed)},
        "TrainingJobSummaries": ordered,
    }
    trials.sort(key=lambda t: t["name"])
    local = {
        "trials": trials,
        "objective": {"metric": metric, "type": direction},
        "search": f"random (Latin hypercube), seed {seed}",
        "parallel": parallel,
    }
    if ctx.cancel.is_set():
        properties["HyperParameterTuningJobStatus"] = "Stopped"
        raise StepFailedError("Stopped: the execution was stopped", properties, local)
    if not scored:
        first = next((s for s in summaries if s.get("FailureReason")), None)
        detail = f" First failure, {first['TrainingJobName']}: {first['FailureReason']}" if first else ""
        reason = (
            f"ClientError: none of {len(summaries)} training job(s) produced the objective metric.{detail}"
        )
        properties["FailureReason"] = reason
        raise StepFailedError(reason, properties, local)
    properties["BestTrainingJob"] = scored[0]
    local["best"] = scored[0]["TrainingJobName"]
    local["best_objective"] = scored[0]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    return StepResult(properties, local)
