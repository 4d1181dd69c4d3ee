"""Jobs with several instances: one host process per instance, as SageMaker runs them.

Each host has its own ``/opt/ml`` sandbox (host 1 the job's folder, host k a sibling ``<job>.algo-k``)
and its own ``resourceconfig.json`` (``current_host`` algo-k of ``hosts`` algo-1..algo-N; training jobs
read it under ``input/config``, processing jobs under ``config``). A training channel or a processing
input with ``S3DataDistributionType = ShardedByS3Key`` gives each host its share of the objects: in key
order, host k (1-based) gets objects k, k+N, k+2N, ... (SageMaker documents that each instance gets
1/N of the objects; this is that assignment, deterministic so runs repeat); the other channels are
copied whole to every host. XGBoost's tracker runs on the first host at 127.0.0.1 on a free port
(``ROOKERY_COLLECTIVE_HOST``/``_PORT``). Hosts run concurrently; a spot interruption stops all of
them, as SageMaker reclaims the whole job.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from emulators.core import procs
from rookery_contracts.env import COLLECTIVE_HOST_ENV, COLLECTIVE_PORT_ENV

SHARDED = "ShardedByS3Key"


def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, count + 1)]


def host_dirs(sandbox: Path, count: int) -> list[Path]:
    """Host 1 works in the job's sandbox, host k in the sibling ``<sandbox>.algo-k``."""
    return [sandbox, *(sandbox.with_name(f"{sandbox.name}.{name}") for name in host_names(count)[1:])]


def keep_share(folder: Path, index: int, count: int) -> int:
    """Delete the objects of ``folder`` that are not host ``index``'s (0-based) share; the share's size."""
    objects = sorted(
        (p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix()
    )
    share = set(objects[index::count])
    for path in objects:
        if path not in share:
            path.unlink()
    return len(share)


def collective_env() -> dict[str, str]:
    """Where the workers of one job attempt reach its tracker: this machine, a port free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {COLLECTIVE_HOST_ENV: "127.0.0.1", COLLECTIVE_PORT_ENV: str(port)}


def host_log_path(log_path: Path, host: str) -> Path:
    """Host 1 writes the job's log; host k ``<log>.algo-k.log`` beside it."""
    return log_path.with_name(f"{log_path.stem}.{host}{log_path.suffix or '.log'}")


def run_all(
    argv: Sequence[str],
    *,
    envs: Sequence[dict[str, str]],
    dirs: Sequence[Path],
    logs: Sequence[IO[str]],
    max_runtime: float | None,
    on_line: Callable[[str], None] | None,
    interrupt_when: Callable[[procs.Watch], bool] | None,
    cancel: threading.Event | None,
) -> list[procs.Outcome]:
    """Every host's process to its end, concurrently. The first host's log feeds ``on_line`` (its
    metrics are the job's) and ``interrupt_when``; when it is interrupted, every host is."""
    interrupted = threading.Event()

    def first_trigger(watch: procs.Watch) -> bool:
        if interrupt_when is not None and interrupt_when(watch):
            interrupted.set()
        return interrupted.is_set()

    outcomes: list[procs.Outcome | None] = [None] * len(dirs)

    def host(index: int) -> None:
        outcomes[index] = procs.run(
            argv,
            env=envs[index],
            cwd=dirs[index],
            log=logs[index],
            max_runtime=max_runtime,
            on_line=on_line if index == 0 else None,
            interrupt_when=first_trigger if index == 0 else (lambda _watch: interrupted.is_set()),
            cancel=cancel,
        )

    threads = [threading.Thread(target=host, args=(i,), daemon=True) for i in range(len(dirs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [o if o is not None else procs.Outcome(exit_code=1, seconds=0.0) for o in outcomes]


def job_outcome(outcomes: list[procs.Outcome]) -> procs.Outcome:
    """One outcome for the job: it failed if any host did; interrupted or stopped if the first host was."""
    first = outcomes[0]
    failed = next((o.exit_code for o in outcomes if o.exit_code != 0), 0)
    return procs.Outcome(
        exit_code=failed,
        seconds=max(o.seconds for o in outcomes),
        runtime_exceeded=any(o.runtime_exceeded for o in outcomes),
        interrupted=first.interrupted,
        stopped=first.stopped,
    )


def failure_reason(hosts: Sequence[str], reasons: Sequence[str]) -> str:
    """The job's reason: the first host whose reason is its own (peers report 'host algo-k ...')."""
    failed = [(h, r) for h, r in zip(hosts, reasons, strict=True) if r]
    if not failed:
        return ""
    own = [(h, r) for h, r in failed if not r.removeprefix("UserError: ").startswith("host algo-")]
    host, reason = (own or failed)[0]
    return f"{reason} (host {host})"
