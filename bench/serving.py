"""Serving benchmark: rookery's endpoint against its in-process limit and against Flask + gunicorn.

Everything is measured side by side in one run on 127.0.0.1: the same penguins model, the same CSV
payloads (1 and 100 records), the same closed-loop client (1 and 8 keep-alive connections, bounded
runs). Prints throughput, p50/p99 latency and server CPU per request, the ratios the issue sets as
goals, and cold start (launch to first healthy /ping). Not a test: nothing here asserts a time.

The in-process limit runs ``Predictor.invoke`` (decode + predict + encode) in a loop in the image's
interpreter with one OpenMP thread: what a request costs with no HTTP at all. The HTTP floor runs
the same ASGI app and uvicorn settings with a handler that does no work (``bench/_floor_app.py``):
what a request costs with HTTP and nothing else. Together they bound what any handler can reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import uvloop

from emulators.core.images import ImageMap
from emulators.core.sandbox import LOCAL_IMAGE, Sandbox
from pipelines.contract import PREPROCESS_PASSES
from pipelines.contract import PROGRAM_DIR as CONTAINER_PROGRAM_DIR
from rookery.demo.dataset import penguin_records
from stage.paths import CONTRACTS_DIR

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "containers" / "program"
IMAGE_PYTHON = REPO / ".venv-image" / "bin" / "python"
IMAGES = ImageMap.project(LOCAL_IMAGE)
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
WORKERS = 2
RUN_SECONDS = 1.5  # per measurement and round
WARMUP_SECONDS = 0.3
IDLE_SECONDS = 0.0002  # the in-process "idle" variant sleeps this long before each call
ROUNDS = 3  # everything is measured once per round, rounds interleave to share the box's noise
SIZES = (1, 100)
CONNECTIONS = (1, 8)
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["species", "island"]
SCHEMA = {"name": "penguins", "target": "sex", "positive_class": "female", "numeric": NUMERIC,
          "categorical": CATEGORICAL, "id_column": None}  # fmt: skip
HYPERPARAMETERS = {"num_round": "100", "max_depth": "5", "eta": "0.1", "eval_metric": "auc"}
GOALS = {
    "p50_vs_limit_1": 2.5,
    "p50_vs_limit_100": 1.3,
    "rps_vs_flask_1": 1.4,
    "p99_over_p50": 10.0,
    "cold_start_s": 3.0,
}


def entrypoint(script: str) -> list[str]:
    """The command line of one of the project image's entrypoints, as the local engine runs it."""
    return IMAGES.command(LOCAL_IMAGE, [f"{CONTAINER_PROGRAM_DIR}/{script}"], default="")


def image_env(**extra: str) -> dict[str, str]:
    """The environment of the other servers and of the in-process loop (not an entrypoint of the image)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "ROOKERY_", "PYTHON"))
    }
    env["PYTHONPATH"] = str(CONTRACTS_DIR)
    env.update(extra)
    return env


# --- the model and the payloads -----------------------------------------------------------------


def build_model(root: Path) -> tuple[Path, list[list[str]]]:
    """Run the real preprocess and train entrypoints on penguins; return the model folder and CSV rows."""
    prep = Sandbox(root / "prep")
    raw = prep.processing_input("raw") / "penguins" / "ingest_date=2024-05-01" / "part-0"
    raw.parent.mkdir(parents=True)
    raw.write_text("".join(json.dumps(record) + "\n" for record in penguin_records()))
    env = IMAGES.environment(LOCAL_IMAGE, prep.base, {"ROOKERY_DATASET_SCHEMA": json.dumps(SCHEMA)})
    for program, _, output in PREPROCESS_PASSES:  # the three preprocessing jobs, on one instance
        subprocess.run(entrypoint(PurePosixPath(program[-1]).name), env=env, check=True, capture_output=True)
        if output is not None:
            shutil.copytree(prep.processing_output(output), prep.processing_input(output))
    train = Sandbox(root / "train")
    channels = {"train": "text/csv", "validation": "text/csv", "preprocessor": "application/json"}
    train.write_training_config(
        {k: str(v) for k, v in HYPERPARAMETERS.items()},
        {name: {"ContentType": content_type} for name, content_type in channels.items()},
        {"current_host": "algo-1", "hosts": ["algo-1"]},
    )
    for channel in channels:
        train.channel(channel).parent.mkdir(parents=True, exist_ok=True)
        train.channel(channel).symlink_to(prep.processing_output(channel))
    env = IMAGES.environment(LOCAL_IMAGE, train.base, {})
    subprocess.run(entrypoint("train"), env=env, check=True, capture_output=True)
    columns = NUMERIC + CATEGORICAL
    rows = []
    for line in (prep.processing_output("inference") / "test.jsonl").read_text().splitlines():
        record = json.loads(line)
        rows.append(["" if record[c] is None else str(record[c]) for c in columns])
    return train.model_dir, rows


def csv_body(rows: list[list[str]], count: int) -> bytes:
    out = io.StringIO()
    for i in range(count):
        out.write(",".join(rows[i % len(rows)]) + "\n")
    return out.getvalue().encode()


# --- in-process limit ---------------------------------------------------------------------------


def inprocess_worker() -> None:
    """In the image's interpreter: argv = model folder, seconds; stdin = JSON {size: payload}; prints JSON."""
    sys.path.insert(0, str(PROGRAM))
    from rookery_image.codec import Predictor  # noqa: PLC0415 (the image's interpreter, not the bench's)
    from rookery_image.model import ModelBundle  # noqa: PLC0415

    predictor = Predictor(ModelBundle.load(Path(sys.argv[1]), nthread=1))
    seconds = float(sys.argv[2])
    results = {}
    for size, text in json.loads(sys.stdin.read()).items():
        body = text.encode()
        warm_until = time.perf_counter() + WARMUP_SECONDS
        while time.perf_counter() < warm_until:
            predictor.invoke(body, "text/csv", "text/csv")
        # "idle": the CPU sleeps 0.2 ms before each (timed) call, as a server's does between requests.
        for mode, pause in (("", 0.0), ("/idle", IDLE_SECONDS)):
            latencies = []
            cpu, start = time.process_time(), time.perf_counter()
            while time.perf_counter() - start < seconds:
                if pause:
                    time.sleep(pause)
                t = time.perf_counter_ns()
                status, _, _ = predictor.invoke(body, "text/csv", "text/csv")
                latencies.append(time.perf_counter_ns() - t)
                assert status == 200
            results[size + mode] = {
                "latencies_ns": latencies,
                "wall": time.perf_counter() - start,
                "cpu": time.process_time() - cpu,
            }
    print(json.dumps(results))


@dataclass
class Result:
    requests: int
    seconds: float
    latencies_ns: list[int]
    cpu_seconds: float
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] / 1e6

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / max(self.requests, 1) * 1e3

    def merge(self, other: Result) -> Result:
        return Result(
            self.requests + other.requests,
            self.seconds + other.seconds,
            self.latencies_ns + other.latencies_ns,
            self.cpu_seconds + other.cpu_seconds,
            self.errors + other.errors,
        )


def inprocess(model_dir: Path, bodies: dict[int, bytes]) -> dict[str, Result]:
    """Keys: "<records>" for the tight loop, "<records>/idle" with the CPU idle between calls."""
    result = subprocess.run(
        [str(IMAGE_PYTHON), "-c", "from bench.serving import inprocess_worker; inprocess_worker()",
         str(model_dir), str(RUN_SECONDS)],
        input=json.dumps({n: b.decode() for n, b in bodies.items()}).encode(),
        capture_output=True, check=True, cwd=REPO, env=image_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    data = json.loads(result.stdout)
    return {
        key: Result(len(d["latencies_ns"]), d["wall"], d["latencies_ns"], d["cpu"]) for key, d in data.items()
    }


# --- a minimal HTTP/1.1 client (keeps its own overhead out of the comparison) ----------------------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def call(self, request: bytes) -> int:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        sock = self.sock
        sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lower = head.lower()
        at = lower.index(b"content-length:") + len(b"content-length:")
        length = int(lower[at : lower.index(b"\r\n", at) if b"\r\n" in lower[at:] else None])
        while len(rest) < length:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            rest += chunk
        self.buffer = rest[length:]
        if b"connection: close" in lower:
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def post_request(body: bytes) -> bytes:
    head = (
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += seconds
    return total


class _Loop(asyncio.Protocol):
    """One keep-alive connection of the concurrent client: send, wait for the whole answer, repeat."""

    def __init__(
        self, request: bytes, deadline: float, sink: list[int], errors: list[int], done: asyncio.Future[None]
    ):
        self.request, self.deadline, self.sink, self.errors, self.done = request, deadline, sink, errors, done
        self.buffer = b""
        self.sent = 0
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport instances

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.sent = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        lower = head.lower()
        at = lower.index(b"content-length:") + len(b"content-length:")
        end = lower.find(b"\r\n", at)
        length = int(lower[at : end if end >= 0 else None])
        if len(rest) < length:
            return
        self.sink.append(time.perf_counter_ns() - self.sent)
        if head[9:12] != b"200":
            self.errors.append(int(head[9:12]))
        self.buffer = rest[length:]
        if b"connection: close" in lower or time.perf_counter() >= self.deadline:
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _concurrent(
    port: int, request: bytes, connections: int, seconds: float
) -> tuple[list[int], list[int]]:
    loop = asyncio.get_running_loop()
    sink: list[int] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:  # a connection the server closes (Connection: close) is reopened
        futures = []
        for _ in range(connections):
            done: asyncio.Future[None] = loop.create_future()
            futures.append(done)
            transport, _ = await loop.create_connection(
                functools.partial(_Loop, request, deadline, sink, errors, done), "127.0.0.1", port
            )
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(*futures)
    return sink, errors


def _blocking(port: int, request: bytes, seconds: float) -> tuple[list[int], list[int]]:
    """One connection with blocking sockets: the least client overhead for latency."""
    conn = Connection(port)
    sink: list[int] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            t = time.perf_counter_ns()
            status = conn.call(request)
            sink.append(time.perf_counter_ns() - t)
            if status != 200:
                errors.append(status)
    finally:
        conn.close()
    return sink, errors


def load(port: int, server_pid: int, body: bytes, connections: int, seconds: float) -> Result:
    """Closed loop: each connection sends its next request when the previous answer has arrived."""
    request = post_request(body)

    def phase(length: float) -> tuple[list[int], list[int], float]:
        start = time.perf_counter()
        if connections == 1:
            sink, errors = _blocking(port, request, length)
        else:
            sink, errors = uvloop.run(_concurrent(port, request, connections, length))
        return sink, errors, time.perf_counter() - start

    phase(WARMUP_SECONDS)
    cpu = tree_cpu_seconds(server_pid)
    latencies, errors, wall = phase(seconds)
    return Result(len(latencies), wall, latencies, tree_cpu_seconds(server_pid) - cpu, len(errors))


# --- the servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> float:
    start = time.perf_counter()
    ping = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            conn = Connection(port)
            try:
                if conn.call(ping) == 200:
                    return time.perf_counter() - start
            finally:
                conn.close()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("server did not become healthy")


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str], port: int
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    launched = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(port, process)
        yield process, time.perf_counter() - launched
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rookery_server(
    model_dir: Path, port: int
) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[bytes], float]]:
    env = IMAGES.environment(
        LOCAL_IMAGE,
        model_dir.parent,
        {
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(WORKERS),
            "ROOKERY_BIND_HOST": "127.0.0.1",
        },
    )
    return started(entrypoint("serve"), env, port)


def floor_server(
    model_dir: Path, port: int
) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[bytes], float]]:
    """rookery's ASGI app and uvicorn settings with a handler that does no work (bench/_floor_app.py)."""
    command = [
        str(IMAGE_PYTHON), "-m", "uvicorn", "bench._floor_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--no-server-header", "--log-level", "warning",
    ]  # fmt: skip
    return started(command, image_env(SAGEMAKER_BASE_DIR=str(model_dir.parent)), port)


def flask_server(
    model_dir: Path, port: int
) -> contextlib.AbstractContextManager[tuple[subprocess.Popen[bytes], float]]:
    # gthread workers keep connections alive (the closest to SageMaker's gevent workers available here).
    command = [
        str(GUNICORN), "bench._flask_app:app", "--workers", str(WORKERS), "--worker-class", "gthread",
        "--threads", "4", "--bind", f"127.0.0.1:{port}", "--keep-alive", "60", "--log-level", "warning",
    ]  # fmt: skip
    return started(command, image_env(BENCH_MODEL_DIR=str(model_dir), OMP_NUM_THREADS="1"), port)


# --- report -------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    limit: dict[str, Result] = {}
    results: dict[tuple[str, int, int], Result] = {}
    colds = []
    with tempfile.TemporaryDirectory(prefix="rookery-bench-") as tmp, contextlib.ExitStack() as stack:
        model_dir, rows = build_model(Path(tmp))
        bodies = {n: csv_body(rows, n) for n in SIZES}
        for _ in range(3):
            with rookery_server(model_dir, free_port()) as (_, cold):
                colds.append(cold)
        servers = {}
        for name, server in (
            ("rookery", rookery_server),
            ("http floor", floor_server),
            ("flask+gunicorn", flask_server),
        ):
            port = free_port()
            process, _ = stack.enter_context(server(model_dir, port))
            servers[name] = (port, process.pid)
        for _ in range(ROUNDS):
            for key, r in inprocess(model_dir, bodies).items():
                limit[key] = limit[key].merge(r) if key in limit else r
            for name, (port, pid) in servers.items():
                for n in SIZES:
                    for c in CONNECTIONS if name != "http floor" else (1,):
                        r = load(port, pid, bodies[n], c, RUN_SECONDS)
                        results[name, n, c] = results[name, n, c].merge(r) if (name, n, c) in results else r
    report(limit, results, colds)


def invalid(errors: int) -> str:
    """Why a ratio cannot be judged: its requests were not all answered 200 ("" when they were)."""
    return f"INVALID ({errors} errors)" if errors else ""


def goal(label: str, ratio: float, bound: float, *, at_most: bool, errors: int = 0) -> str:
    """One goal's line; ``errors``: non-200 answers in the results the ratio comes from (then no verdict)."""
    met = ratio <= bound if at_most else ratio >= bound
    outcome = invalid(errors) or verdict(met)
    return f"  {label:<58}{ratio:6.2f}x  [{'<=' if at_most else '>='} {bound}x]  {outcome}"


def other(label: str, ratio: float, errors: int = 0) -> str:
    """A ratio with no goal; flagged INVALID like a goal's when its results hold errors."""
    return f"  {label:<58}{ratio:6.2f}x" + flag(errors)


def flag(errors: int) -> str:
    return f"  {invalid(errors)}" if errors else ""


def report(limit: dict[str, Result], results: dict[tuple[str, int, int], Result], colds: list[float]) -> None:
    # Other processes on the same cores move every number here; the load average says how busy it was.
    print(f"load average at the end (1/5/15 min): {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"serving benchmark: penguins model (100 trees), CSV payloads, {WORKERS} workers, "
        f"{os.cpu_count()} cores; {ROUNDS} interleaved rounds of {RUN_SECONDS:g} s per measurement, 127.0.0.1"
    )
    header = ("server", "records", "conns", "req/s", "p50 ms", "p99 ms", "cpu ms/req", "errors")
    print(f"{header[0]:<16}" + "".join(f"{h:>11}" for h in header[1:]))
    rows = [("in-process", key, "-", r) for key, r in limit.items()]
    rows += [(name, str(n), str(conns), r) for (name, n, conns), r in results.items()]
    for name, records, shown, r in rows:
        print(
            f"{name:<16}{records:>11}{shown:>11}{r.rps:>11.0f}{r.pct(50):>11.3f}{r.pct(99):>11.3f}{r.cpu_ms:>11.3f}"
            f"{r.errors:>11}"
        )
    print("\nratios [goal]:")
    for n in SIZES:
        r = results["rookery", n, 1]
        ratio = r.pct(50) / limit[str(n)].pct(50)
        label = f"p50 vs in-process, {n} record(s), 1 conn"
        print(goal(label, ratio, GOALS[f"p50_vs_limit_{n}"], at_most=True, errors=r.errors))
    for c in CONNECTIONS:
        ours, flask = results["rookery", 1, c], results["flask+gunicorn", 1, c]
        label = f"req/s vs Flask+gunicorn, 1 record, {c} conn(s)"
        errors = ours.errors + flask.errors
        print(goal(label, ours.rps / flask.rps, GOALS["rps_vs_flask_1"], at_most=False, errors=errors))
    for (name, n, c), r in results.items():
        if name == "rookery":
            label = f"p99/p50, {n} record(s), {c} conn(s)"
            print(goal(label, r.pct(99) / r.pct(50), GOALS["p99_over_p50"], at_most=True, errors=r.errors))
    print("other ratios:")
    for n in SIZES:
        # The best any handler could reach on this HTTP stack: the in-process cost plus the round trip
        # of the same server with no model behind it.
        ours, floor_r = results["rookery", n, 1], results["http floor", n, 1]
        bound = (limit[str(n)].pct(50) + floor_r.pct(50)) / limit[str(n)].pct(50)
        label = f"p50 bound on this HTTP stack, {n} record(s): (in-process + floor) / in-process"
        print(other(label, bound, floor_r.errors))
        floor = floor_r.pct(50)
        rest = ours.pct(50) - limit[str(n)].pct(50) - floor
        print(
            f"    p50 {ours.pct(50):.3f} ms = in-process {limit[str(n)].pct(50):.3f}"
            f" + HTTP floor {floor:.3f} + the rest {rest:.3f} (the handler running inside a server)"
            + flag(ours.errors + floor_r.errors)
        )
        idle = limit[f"{n}/idle"].pct(50) - limit[str(n)].pct(50)
        print(
            f"    of the rest, {idle:.3f} ms appears in-process too when the CPU idles 0.2 ms between calls"
        )
    for n in SIZES:
        noise = limit[str(n)].pct(99) / limit[str(n)].pct(50)
        print(other(f"p99/p50 in-process, {n} record(s) (the box noise floor)", noise))
    for c in CONNECTIONS:
        ours, flask = results["rookery", 100, c], results["flask+gunicorn", 100, c]
        label = f"req/s vs Flask+gunicorn, 100 records, {c} conn(s)"
        print(other(label, ours.rps / flask.rps, ours.errors + flask.errors))
    for n in SIZES:
        ours, flask = results["rookery", n, 8], results["flask+gunicorn", n, 8]
        label = f"server CPU per request vs Flask+gunicorn, {n} record(s), 8 conns"
        print(other(label, ours.cpu_ms / flask.cpu_ms, ours.errors + flask.errors))
    cold = statistics.median(colds)
    met = verdict(cold < GOALS["cold_start_s"])
    print(f"cold start, launch to first healthy /ping (median of {len(colds)}): {cold:.2f} s  [< 3 s]  {met}")


if __name__ == "__main__":
    main()
