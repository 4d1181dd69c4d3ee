"""How long the pipeline render takes, next to CDK's own synth (the render runs in every synth).

Measured side by side in one run, each cold number in a fresh interpreter:
* cold render: import the SageMaker SDK and render once (what one `cdk synth` pays on a miss);
* cached render: the same from ``pipelines.render_definition_cached`` on a hit (no SDK import);
* warm render: further renders in one process, for each variant (train, tune);
* validate: the perimeter and shape checks of a rendered definition;
* a minimal CDK synth (one stack, one bucket): a floor for any synth of rookery's stacks.
Printed as seconds and ratios; never asserted.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pipelines
from pipelines import PipelineResources, PipelineSettings, validate_definition
from stage import load_stage

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3

_SETTINGS = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from stage import load_stage
import pipelines
stage = load_stage("dev")
resources = pipelines.PipelineResources.placeholders(stage)
settings = pipelines.PipelineSettings.from_stage(stage, resources, tune=sys.argv[1] == "tune")
"""
_COLD = _SETTINGS + "pipelines.render_definition(settings)\nprint(time.perf_counter() - t0)\n"
_CACHED = (
    _SETTINGS
    + "pipelines.render_definition_cached(settings, Path(sys.argv[2]))\nprint(time.perf_counter() - t0)\n"
)

_MINIMAL_SYNTH = """
import tempfile, time
t0 = time.perf_counter()
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
app = cdk.App(outdir=tempfile.mkdtemp())
s3.Bucket(cdk.Stack(app, "Minimal"), "Bucket")
app.synth()
print(time.perf_counter() - t0)
"""


def _fresh_process_seconds(code: str, *args: str) -> float:
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("CDK_VALIDATION", "false")
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def _warm(variant: str) -> tuple[float, float]:
    stage = load_stage("dev")
    settings = PipelineSettings.from_stage(
        stage, PipelineResources.placeholders(stage), tune=variant == "tune"
    )
    pipelines.render_definition(settings)  # SDK import and first-use caches: measured cold above
    renders, checks = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        definition = pipelines.render_definition(settings)
        renders.append(time.perf_counter() - start)
        start = time.perf_counter()
        validate_definition(definition)
        checks.append(time.perf_counter() - start)
    return statistics.median(renders), statistics.median(checks)


def main() -> None:
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for variant in ("train", "tune"):
            rows.append((f"cold render, {variant} (fresh process)", _fresh_process_seconds(_COLD, variant)))
            _fresh_process_seconds(_CACHED, variant, cache_dir)  # fills the cache
            rows.append(
                (
                    f"cached render, {variant} (fresh process)",
                    _fresh_process_seconds(_CACHED, variant, cache_dir),
                )
            )
    for variant in ("train", "tune"):
        render, check = _warm(variant)
        rows.append((f"warm render, {variant} (median of {REPEATS})", render))
        rows.append((f"validate, {variant} (median of {REPEATS})", check))
    try:
        synth = _fresh_process_seconds(_MINIMAL_SYNTH)
    except (subprocess.CalledProcessError, ValueError) as exc:
        synth = math.nan
        print(f"minimal CDK synth not measured: {exc}")
    rows.append(("minimal CDK synth, 1 stack 1 bucket (fresh process)", synth))
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1000:9.1f} ms")
    if not math.isnan(synth):
        print("ratio to the minimal CDK synth:")
        for name, seconds in rows:
            if "render" in name:
                print(f"  {name.split(' (')[0]:<{width}}  {seconds / synth:6.2f}")


if __name__ == "__main__":
    main()
