"""Training on several hosts: XGBoost's collective over the hosts of ``resourceconfig.json``.

The first host (``hosts[0]``) runs the tracker; every host, the first included, joins as a worker
whose rank is its place in ``hosts``. Each host trains on its shard of the ``train`` channel
(``ShardedByS3Key``) and on the whole ``validation`` channel (``FullyReplicated``), so XGBoost's
allreduced validation metrics are the global ones and every host takes the same early-stopping
decision. Only the first host writes checkpoints and the model.

Nothing waits forever: a host that goes ``ROOKERY_COLLECTIVE_TIMEOUT`` seconds without progress with
its peers (joining, a collective step of :class:`Cluster`, which training takes once a round) ends
with a failure reason (:class:`Watchdog`). XGBoost's own timeout does not bound every wait: when a
peer dies mid-round, a surviving host can block for good in a broadcast inside the tree updater
(seen with XGBoost 3.2 in about one run in 35). A host that fails before training tells its peers why
(:meth:`Cluster.agree`), so every host fails with that host's reason; a host that dies mid-training
makes its peers fail at once (their sockets close) or after the timeout.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from rookery_contracts.env import COLLECTIVE_HOST_ENV, COLLECTIVE_PORT_ENV, COLLECTIVE_TIMEOUT_ENV
from rookery_image.contract import EXIT_USER_ERROR, ResourceConfig, UserError, write_failure

_T = TypeVar("_T")

DEFAULT_PORT = 9099
DEFAULT_TIMEOUT_SECONDS = 600


class PeerFailed(UserError):  # noqa: N818 (the job's reason: another host failed first)
    """Another host of the job failed; the message names it and carries its reason."""


class Watchdog:
    """Ends the job when this host makes no progress for ``seconds``: :meth:`beat` marks progress;
    ``seconds`` without one writes ``failure`` where SageMaker looks for the reason and exits with the
    user-error code. The watching thread runs while the main thread waits inside XGBoost (its calls
    release the GIL)."""

    def __init__(self, seconds: float, failure: str) -> None:
        self.seconds = seconds
        self.failure = failure
        self._last = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rookery-watchdog", daemon=True)
        self._thread.start()

    def beat(self, failure: str | None = None) -> None:
        """Progress now; ``failure``, when given, is the reason from here on."""
        if failure is not None:
            self.failure = failure
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        poll = min(1.0, self.seconds / 4)
        while not self._stopped.wait(poll):
            if time.monotonic() - self._last > self.seconds:
                _give_up(self.failure)


@dataclass(frozen=True)
class Cluster:
    """This host's place in the job: ``rank`` is its index in ``hosts``. Each collective step that
    completes is progress for the ``watchdog`` (a multi-host job has one)."""

    hosts: tuple[str, ...]
    current_host: str
    watchdog: Watchdog | None = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def first(self) -> bool:
        """The host that runs the tracker and writes checkpoints and the model."""
        return self.rank == 0

    def agree(self, error: BaseException | None) -> None:
        """Every host reports how its preparation went; if any failed, every host fails with its reason."""
        reasons = self.gather(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        failed = [(self.hosts[rank], reason) for rank, reason in enumerate(reasons) if reason is not None]
        if failed:
            host, reason = failed[0]
            more = f" (and {len(failed) - 1} other host(s))" if len(failed) > 1 else ""
            raise PeerFailed(f"host {host} failed{more}: {reason}")

    def gather(self, value: Any) -> list[Any]:
        """Every host's ``value`` (picklable), in host order."""
        if not self.distributed:
            return [value]
        from xgboost import collective  # noqa: PLC0415 (imported with xgboost, after argument checks)

        return self._progressed(
            [_broadcast(collective, value, rank, rank == self.rank) for rank in range(self.size)]
        )

    def any(self, flag: bool) -> bool:
        """True on every host when ``flag`` is true on some host (e.g. a SIGTERM one host has seen)."""
        if not self.distributed:
            return flag
        from xgboost import collective  # noqa: PLC0415

        return self._progressed(
            bool(collective.allreduce(np.array([int(flag)], dtype=np.int32), collective.Op.MAX)[0])
        )

    def total(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over the hosts."""
        if not self.distributed:
            return values
        from xgboost import collective  # noqa: PLC0415

        return self._progressed(collective.allreduce(values, collective.Op.SUM))

    def from_first(self, value: Any) -> Any:
        """The first host's ``value`` on every host."""
        if not self.distributed:
            return value
        from xgboost import collective  # noqa: PLC0415

        return self._progressed(_broadcast(collective, value, 0, self.first))

    def _progressed(self, result: _T) -> _T:
        if self.watchdog is not None:
            self.watchdog.beat()
        return result


def _broadcast(collective: Any, value: Any, root: int, mine: bool) -> Any:
    """``value`` of the host ``root`` on every host; a broadcast needs a value at its root, so each
    value travels in a one-item tuple (None included)."""
    boxed = collective.broadcast((value,) if mine else None, root)
    return boxed[0]


def _timeout() -> int:
    raw = os.environ.get(COLLECTIVE_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(
            f"{COLLECTIVE_TIMEOUT_ENV}={raw!r} is not a whole number of seconds >= 1; fix or unset it"
        )
    return value


@contextmanager
def joined(resources: ResourceConfig) -> Iterator[Cluster]:
    """This host as a worker of the job's collective (a plain single host when the job has one)."""
    if resources.current_host not in resources.hosts:
        raise UserError(
            f"resourceconfig.json: current_host {resources.current_host!r} is not among hosts "
            f"{list(resources.hosts)}; it is written by SageMaker, do not edit it"
        )
    cluster = Cluster(resources.hosts, resources.current_host)
    if not cluster.distributed:
        yield cluster
        return
    from xgboost import collective  # noqa: PLC0415
    from xgboost.core import XGBoostError  # noqa: PLC0415
    from xgboost.tracker import RabitTracker  # noqa: PLC0415

    address = os.environ.get(COLLECTIVE_HOST_ENV, "").strip() or cluster.hosts[0]
    raw_port = os.environ.get(COLLECTIVE_PORT_ENV, "").strip() or str(DEFAULT_PORT)
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise UserError(f"{COLLECTIVE_PORT_ENV}={raw_port!r} is not a port number; fix or unset it")
    timeout = _timeout()
    tracker = None
    if cluster.first:
        try:
            tracker = RabitTracker(
                n_workers=cluster.size, host_ip=address, port=int(raw_port), sortby="task", timeout=timeout
            )
            tracker.start()
        except XGBoostError as exc:
            raise UserError(
                f"host {cluster.current_host} could not start the XGBoost tracker on {address}:{raw_port} "
                f"({first_line(exc)}); free the port or set {COLLECTIVE_PORT_ENV} to another one"
            ) from None
    print(
        f"train: host {cluster.current_host} joins {cluster.size} hosts {list(cluster.hosts)} "
        f"(tracker {address}:{raw_port}, timeout {timeout} s)",
        flush=True,
    )
    # XGBoost retries a tracker that is not up yet with growing pauses: the watchdog bounds the wait.
    watchdog = Watchdog(
        timeout,
        f"UserError: host {cluster.current_host} could not join the other hosts {list(cluster.hosts)} "
        f"through the tracker at {address}:{raw_port} within {timeout} s; a host that failed to start "
        "has its own failure reason",
    )
    try:
        collective.init(
            dmlc_tracker_uri=address,
            dmlc_tracker_port=int(raw_port),
            # Ranks follow the order of hosts: the first host is rank 0.
            dmlc_task_id=f"{cluster.rank:05d}-{cluster.current_host}",
            dmlc_timeout=timeout,
            dmlc_retry=timeout,
        )
    except XGBoostError as exc:
        watchdog.stop()
        raise PeerFailed(
            f"host {cluster.current_host} could not join the other hosts {list(cluster.hosts)} through the "
            f"tracker at {address}:{raw_port} within {timeout} s ({first_line(exc)}); a host that failed to "
            "start has its own failure reason"
        ) from None
    watchdog.beat(
        f"UserError: {_lost_contact(cluster, f'no step with them completed within {timeout} s')}"
        f" (if one boosting round of this job takes longer, raise {COLLECTIVE_TIMEOUT_ENV})"
    )
    succeeded = False
    try:
        yield Cluster(cluster.hosts, cluster.current_host, watchdog)
        succeeded = True
    except XGBoostError as exc:
        lost = PeerFailed(_lost_contact(cluster, first_line(exc)))
        watchdog.beat(f"UserError: {lost}")  # should leaving hang, the job still ends with this reason
        raise lost from None
    except UserError as exc:
        watchdog.beat(f"UserError: {exc}")
        raise
    finally:
        try:
            _finalize(collective)
        finally:
            watchdog.stop()
        _stop_tracker(tracker, timeout if succeeded else 5)


def _lost_contact(cluster: Cluster, detail: str) -> str:
    return (
        f"host {cluster.current_host} lost contact with its peers {list(cluster.hosts)} ({detail}); "
        "another host failed or stopped: its failure reason says why"
    )


def _give_up(failure: str) -> None:
    """The job's end when a wait takes too long: the reason where SageMaker looks, then exit."""
    write_failure(failure)
    print(failure, file=sys.stderr, flush=True)
    os._exit(EXIT_USER_ERROR)


def _finalize(collective: Any) -> None:
    from xgboost.core import XGBoostError  # noqa: PLC0415

    try:
        collective.finalize()
    except XGBoostError as exc:
        print(f"train: leaving the collective failed: {first_line(exc)}", file=sys.stderr, flush=True)


def _stop_tracker(tracker: Any, wait_seconds: int) -> None:
    from xgboost.core import XGBoostError  # noqa: PLC0415

    if tracker is None:
        return
    try:
        tracker.wait_for(wait_seconds)
    except (XGBoostError, ValueError) as exc:
        print(f"train: the tracker did not stop cleanly: {first_line(exc)}", file=sys.stderr, flush=True)
    try:
        tracker.free()
    except XGBoostError as exc:
        print(f"train: the tracker reported: {first_line(exc)}", file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    """The informative line of an XGBoost error (its messages carry stack traces)."""
    lines = [ln.strip(" -") for ln in str(exc).splitlines() if ln.strip(" -") and "[bt]" not in ln]
    useful = [ln.split("]: ", 1)[-1] for ln in lines if "Stack trace" not in ln]
    return "; ".join(dict.fromkeys(u for u in useful if u))[:300] or type(exc).__name__
