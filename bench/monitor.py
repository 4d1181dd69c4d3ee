"""Monitoring benchmark: time and peak memory of the real data-quality monitor over 100k and 1M records.

The baseline is the real Baseline job's output for a synthetic training split; the window is capture
files as the endpoint writes them (CSV requests of 10 records each, one file per 10k invocations).
Each run is the ``monitor.py data-quality`` entrypoint in its own process, so its peak resident
memory (``wait4``) is its own. The monitor streams the window, so time should grow about tenfold
from 100k to 1M records and memory hardly at all. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from emulators.core.images import ImageMap
from emulators.core.sandbox import LOCAL_IMAGE
from emulators.sagemaker_runtime.capture import Captured, capture_record
from rookery_contracts import monitoring as mon
from rookery_contracts.env import DATASET_SCHEMA_ENV

IMAGES = ImageMap.project(LOCAL_IMAGE)
SCHEMA = {
    "name": "bench",
    "target": "y",
    "positive_class": "1",
    "numeric": ["a", "b", "c", "d"],
    "categorical": ["e", "f"],
    "id_column": None,
}
SIZES = (100_000, 1_000_000)
PER_REQUEST = 10
PER_FILE = 10_000  # invocations per capture file
THRESHOLDS = {
    "drift": {
        "numeric_psi": 0.2,
        "categorical_linf": 0.1,
        "missing_rate_increase": 0.05,
        "invalid_share": 0.01,
        "unknown_category_share": 0.01,
    },
    "quality": {"max_drop": 0.1, "min_labelled_records": 20},
}


def _rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rng.normal(size=(n, 4)).round(4), rng.integers(0, 5, size=n), rng.integers(0, 3, size=n)


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one entrypoint run."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[-1]} failed:\n{output}")
    return seconds, usage.ru_maxrss // 1024


def baseline(root: Path) -> Path:
    """The Baseline job over 20k synthetic training records; returns its output folder."""
    sandbox = root / "baseline"
    records = sandbox / "processing" / "input" / "baseline_records"
    records.mkdir(parents=True)
    x, e, f = _rows(20_000, np.random.default_rng(1))
    with (records / "train.jsonl").open("w") as out:
        for row, a, b in zip(x.tolist(), e.tolist(), f.tolist(), strict=True):
            out.write(
                json.dumps({"a": row[0], "b": row[1], "c": row[2], "d": row[3], "e": f"e{a}", "f": f"f{b}"})
                + "\n"
            )
    evaluation = sandbox / "processing" / "input" / "evaluation"
    evaluation.mkdir(parents=True)
    metrics = {m: {"value": 0.9} for m in mon.QUALITY_METRICS}
    (evaluation / "evaluation.json").write_text(
        json.dumps({"binary_classification_metrics": metrics, "decision_threshold": {"value": 0.5}})
    )
    argv = [
        *IMAGES.command(LOCAL_IMAGE, list(mon.BASELINE_ENTRYPOINT), default=""),
        "--thresholds",
        json.dumps(THRESHOLDS),
    ]
    env = IMAGES.environment(LOCAL_IMAGE, sandbox, {DATASET_SCHEMA_ENV: json.dumps(SCHEMA)})
    _run(argv, env, sandbox)
    return sandbox / "processing" / "output" / "baseline" / mon.DATA_QUALITY


def capture(folder: Path, records: int) -> None:
    """``records`` records as CSV requests in capture files under ``folder/<endpoint>/primary/...``."""
    rng = np.random.default_rng(2)
    moment = dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)
    hour = folder / "bench-endpoint" / "primary" / "2026" / "12" / "03" / "10"
    hour.mkdir(parents=True)
    invocations = records // PER_REQUEST
    for start in range(0, invocations, PER_FILE):
        count = min(PER_FILE, invocations - start)
        x, e, f = _rows(count * PER_REQUEST, rng)
        with (hour / f"{start:08d}.jsonl").open("w") as out:
            for k in range(count):
                rows = range(k * PER_REQUEST, (k + 1) * PER_REQUEST)
                body = "".join(f"{x[r, 0]},{x[r, 1]},{x[r, 2]},{x[r, 3]},e{e[r]},f{f[r]}\n" for r in rows)
                item = Captured("text/csv", body.encode(), "text/csv", b"0.5,1\n" * PER_REQUEST, moment, None)
                out.write(json.dumps(capture_record(item, str(start + k))) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rookery-bench-monitor-") as tmp:
        root = Path(tmp)
        base = baseline(root)
        timings: dict[int, tuple[float, int]] = {}
        for size in SIZES:
            sandbox = root / f"monitor-{size}"
            source = sandbox / "processing" / "input" / "endpoint"
            capture(source, size)
            env = IMAGES.environment(
                LOCAL_IMAGE,
                sandbox,
                {
                    DATASET_SCHEMA_ENV: json.dumps(SCHEMA),
                    mon.DATASET_SOURCE_ENV: str(source),
                    mon.OUTPUT_PATH_ENV: str(sandbox / "processing" / "resultdata"),
                    mon.BASELINE_STATISTICS_ENV: str(base / mon.STATISTICS_FILE),
                    mon.BASELINE_CONSTRAINTS_ENV: str(base / mon.CONSTRAINTS_FILE),
                    mon.ENDPOINT_NAME_ENV: "bench-endpoint",
                },
            )
            argv = [*IMAGES.command(LOCAL_IMAGE, list(mon.MONITOR_ENTRYPOINT), default=""), mon.DATA_QUALITY]
            timings[size] = _run(argv, env, sandbox)
            report = json.loads((sandbox / "processing" / "resultdata" / mon.REPORT_FILE).read_text())
            seconds, peak = timings[size]
            print(
                f"monitor data-quality: {size:>9,} records in {seconds:6.1f} s "
                f"({size / seconds:,.0f} records/s), peak memory {peak} MiB, status {report['status']!r}",
                flush=True,
            )
        (small, small_peak), (large, large_peak) = timings[SIZES[0]], timings[SIZES[1]]
        print(
            f"growth 100k -> 1M: time x{large / small:.1f} (near 10 = linear), "
            f"peak memory x{large_peak / small_peak:.2f} (near 1 = streamed)",
            flush=True,
        )
