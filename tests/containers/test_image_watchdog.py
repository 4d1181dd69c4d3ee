"""The multi-host watchdog on its own: a host that keeps making progress is never stopped however
long the job runs; one that stops making progress for the timeout ends, at once, with the latest
reason written where SageMaker looks. (The hosts tests show it on real training hosts.)"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from image_helpers import Sandbox

# Beats every 0.2 s for ``beats`` beats, names the reason a stall would have, then waits ``stall`` s.
PROGRAM = """
import sys, time
from rookery_image.cluster import Watchdog
seconds, beats, stall = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
dog = Watchdog(seconds, "UserError: the reason before the first beat")
for _ in range(beats):
    time.sleep(0.2)
    dog.beat()
dog.beat("UserError: host algo-2 lost contact with its peers (stalled here)")
print("stalling", flush=True)
time.sleep(stall)
dog.stop()
print("finished", flush=True)
"""


def run(
    job: Sandbox, seconds: float, beats: int, stall: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    python = job.argv("train")[0]
    started = time.monotonic()
    done = subprocess.run(
        [python, "-c", PROGRAM, str(seconds), str(beats), str(stall)],
        env=job.env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def test_steady_progress_outlives_the_timeout_many_times_over(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "job")
    done, took = run(job, seconds=1, beats=15, stall=0.3)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["stalling", "finished"] and took > 3
    assert not job.failure_file.exists()


def test_a_stall_ends_the_job_after_the_timeout_with_the_latest_reason(tmp_path: Path) -> None:
    job = Sandbox(tmp_path / "job")
    done, took = run(job, seconds=1, beats=5, stall=30)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "finished" not in done.stdout and took < 10
    reason = "UserError: host algo-2 lost contact with its peers (stalled here)"
    assert job.failure == reason + "\n"
    assert reason in done.stderr
