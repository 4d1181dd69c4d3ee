"""How long ``make demo`` takes after installation, against the 5-minute goal.

Runs ``rookery demo`` exactly as ``make demo`` does (a fresh process, every stage audited), once
for the train variant and once with ``--tune`` (``TUNE=1 make demo``), each in its own empty home,
so the demo's own render is cold. ``cdk synth`` keeps its render cache in ``<repo>/.rookery/cache``
whatever the home: the first run after a pipeline change pays the SageMaker SDK import in the
audit too (as a fresh clone's first ``make demo`` does), later ones do not. Prints the wall time,
the share of the goal, and each phase's time from the demo's own summary. Never asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 300.0
# A row of the summary table: "│ phase │ result │ 12.3 s │".
_ROW = re.compile(r"^\W*([a-z][a-z ]+?)\s+\W\s+(passed|failed|not run)\s+\W\s+([\d.]+ s|-)\s+\W*$")


def _run(*args: str) -> tuple[float, int, list[tuple[str, str, str]], str]:
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(ROOT / ".venv" / "bin"), str(ROOT / "node_modules" / ".bin"), os.environ["PATH"]]
        ),
        "CDK_VALIDATION": "false",
    }
    with tempfile.TemporaryDirectory(prefix="rookery-bench-demo-") as home:
        started = time.perf_counter()
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "rookery"), "demo", "--home", home, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    phases = [(m[1], m[2], m[3]) for line in done.stdout.splitlines() if (m := _ROW.match(line))]
    reason = done.stderr.strip().splitlines()[-2] if done.returncode and done.stderr.strip() else ""
    return seconds, done.returncode, phases, reason


def main() -> None:
    print(f"rookery demo after installation, each run in an empty home; goal {GOAL_SECONDS:.0f} s")
    print(f"({os.cpu_count()} CPUs; the audit synthesizes the stages side by side, one per CPU)\n")
    for label, args in (("train (make demo)", ()), ("tune (TUNE=1 make demo)", ("--tune",))):
        seconds, code, phases, reason = _run(*args)
        verdict = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"{label:<26} {seconds:6.1f} s = {seconds / GOAL_SECONDS:.2f} x the goal  {verdict}")
        for name, result, took in phases:
            print(f"    {name:<18} {result:<8} {took:>8}")
        measured = sum(float(t.split()[0]) for _, _, t in phases if t != "-")
        print(f"    {'(start, render)':<18} {'':<8} {seconds - measured:>6.1f} s")
        if reason:
            print(f"    reason: {reason}")
