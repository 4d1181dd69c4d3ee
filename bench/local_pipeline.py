"""How the local pipeline scales: wall time and rows per second per step at 10k, 100k and 1M rows.

The bench generates the synthetic dataset (``rookery.demo.synthetic``: 6 numeric and 2
categorical features, missing values, numbers sent as text) and a stage for its schema, renders the
train variant of the real definition and runs it with the local engine, one size after another in
one process. Generating the data is not timed. Printed: wall seconds, CPU seconds (of the job
processes, so other work on the machine does not inflate them) and rows/s of every step, the
whole execution, and the growth ratios time(1M) / time(100k) (10 means linear). Never asserted.

``ROOKERY_BENCH_ROWS=10000,100000 python -m bench local_pipeline`` runs other sizes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from emulators.s3 import LocalS3
from emulators.sagemaker import Execution, ImageMap, LocalEngine, LocalHome, StepEvent
from pipelines import PipelineResources, PipelineSettings, render_definition_cached
from rookery.demo.synthetic import SYNTHETIC_SCHEMA, write_jsonl
from stage import STAGES_DIR, Stage, parse_stage

ROOT: Final = Path(__file__).resolve().parent.parent
SIZES: Final = (10_000, 100_000, 1_000_000)
# The rows each step works on, as shares of the input (the dev stage splits 70/15/15).
STEP_ROWS: Final = {
    "Preprocess": 1.0,
    "Train": 0.85,  # train + validation
    "Evaluate": 0.30,  # validation + test
    "BatchTransform": 0.15,  # test
}


def synthetic_stage() -> Stage:
    raw = tomllib.loads((STAGES_DIR / "dev.toml").read_text(encoding="utf-8"))
    raw["dataset"] = {k: v for k, v in SYNTHETIC_SCHEMA.items() if v is not None}
    return parse_stage("bench", raw, source="bench/local_pipeline.py")


@dataclass
class Measured:
    execution: Execution
    seconds: float
    cpu: dict[str, float]  # step -> CPU seconds of the job processes it ran (user + system)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(rows: int, definition: dict[str, Any], stage: Stage, work: Path) -> Measured:
    home = LocalHome(work / f"home-{rows}")
    resources = PipelineResources.placeholders(stage)
    raw = f"s3://{resources.raw_bucket}/{stage.data.layout.partition(stage.dataset, '2024-05-01')}part-1"
    write_jsonl(LocalS3(home).path(raw), rows, seed=rows)
    engine = LocalEngine(home, ImageMap.project(resources.image_uri))
    cpu: dict[str, float] = {}
    marks: dict[str, float] = {}

    def on_event(event: StepEvent) -> None:
        # The pipeline is a chain, so the job processes reaped while a step runs are its own.
        if event.status == "Starting":
            marks[event.step_name] = _children_cpu()
        elif event.step_name in marks and event.status in ("Succeeded", "Failed"):
            cpu[event.step_name] = _children_cpu() - marks[event.step_name]

    started = time.perf_counter()
    # The synthetic data is deliberately noisy (AUC ~0.83): lower bars let every step run.
    execution = engine.run(
        definition,
        parameters={"AucThreshold": 0.5, "OperatingPoint": "best_f1"},
        on_event=on_event,
        pipeline_name="bench",
    )
    return Measured(execution, time.perf_counter() - started, cpu)


def main(argv: list[str] | None = None) -> None:
    given = (
        argv if argv is not None else [r for r in os.environ.get("ROOKERY_BENCH_ROWS", "").split(",") if r]
    )
    sizes = tuple(int(r) for r in given) or SIZES
    stage = synthetic_stage()
    settings = PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage), tune=False)
    definition = render_definition_cached(settings, ROOT / ".rookery" / "cache")
    results: dict[int, Measured] = {}
    work = Path(tempfile.mkdtemp(prefix="rookery-bench-local-"))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        for rows in sizes:
            measured = run_once(rows, definition, stage, work)
            results[rows] = measured
            execution, seconds = measured.execution, measured.seconds
            if execution.status != "Succeeded":
                print(
                    f"{rows} rows: {execution.status} at {execution.failed_step}: {execution.failure_reason}"
                )
                return
            print(f"{rows:>9,} rows: {seconds:7.1f} s end to end", flush=True)
            shutil.rmtree(work / f"home-{rows}")  # 1M rows leave ~1 GB of staged copies
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'step':<16}" + "".join(f"{f'{r:,} rows: wall, cpu, rows/s':>40}" for r in sizes))
    names = [s.name for s in results[sizes[0]].execution.steps if s.status == "Succeeded"]
    for name in [*names, "(execution)"]:
        cells = []
        for rows in sizes:
            m = results[rows]
            if name == "(execution)":
                wall, cpu, share = m.seconds, sum(m.cpu.values()), 1.0
            else:
                wall, cpu, share = (
                    m.execution.step(name).seconds or 0.0,
                    m.cpu.get(name, 0.0),
                    STEP_ROWS.get(name, 0.0),
                )
            rate = f"{rows * share / wall:>10,.0f}/s" if share and wall else ""
            cells.append(f"{wall:6.1f} s {cpu:6.1f} s {rate:>12}")
        print(f"{name:<16}" + "".join(f"{c:>40}" for c in cells))
    if 100_000 in results and 1_000_000 in results:
        big, small = results[1_000_000], results[100_000]
        print()
        print("growth time(1M) / time(100k) (10 = linear):     wall     cpu")
        for name in ["Preprocess", "Train", "Evaluate", "BatchTransform"]:
            wall = (big.execution.step(name).seconds or 0.0) / (small.execution.step(name).seconds or 1e-9)
            cpu = big.cpu.get(name, 0.0) / (small.cpu.get(name) or 1e-9)
            print(f"  {name:<44}{wall:6.1f}  {cpu:6.1f}")
        total_cpu = sum(big.cpu.values()) / (sum(small.cpu.values()) or 1e-9)
        print(f"  {'(execution)':<44}{big.seconds / small.seconds:6.1f}  {total_cpu:6.1f}")
        metrics = {
            r: {
                k: v
                for k, v in results[r].execution.step("Train").metrics["final_metrics"].items()
                if "validation" in k
            }
            for r in (100_000, 1_000_000)
        }
        shown = f"100k {json.dumps(metrics[100_000])}, 1M {json.dumps(metrics[1_000_000])}"
        print(f"  (validation metrics: {shown})")


if __name__ == "__main__":
    main()
