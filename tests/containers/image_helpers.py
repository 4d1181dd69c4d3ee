"""Helpers for the project-image tests: datasets as Firehose writes them, /opt/ml sandboxes, real entrypoints.

Entrypoints run as subprocesses with ``.venv-image/bin/python`` (the interpreter built from exactly
``containers/requirements.txt``, the file the Dockerfile installs) in the environment the local
engine gives them (``emulators.core.images.ImageMap``), each in a job's /opt/ml
(``emulators.core.sandbox.Sandbox``).
"""

from __future__ import annotations

import fcntl
import gzip
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

import numpy as np

from emulators.core.images import ImageMap
from emulators.core.sandbox import LOCAL_IMAGE
from emulators.core.sandbox import Sandbox as JobSandbox
from pipelines.contract import PREPROCESS_PASSES, PROGRAM_DIR

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = REPO / "containers"
PROGRAM = CONTAINERS / "program"
IMAGE_PYTHON = REPO / ".venv-image" / "bin" / "python"
CONTRACTS = REPO / "contracts"

PENGUINS_SCHEMA: dict[str, Any] = {
    "name": "penguins",
    "target": "sex",
    "positive_class": "female",
    "numeric": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
    "categorical": ["species", "island"],
    "id_column": None,
}
# A second, unrelated schema: different columns, an id column, a rare positive class.
LOANS_SCHEMA: dict[str, Any] = {
    "name": "loans",
    "target": "defaulted",
    "positive_class": "yes",
    "numeric": ["income", "debt_ratio", "age", "credit_lines"],
    "categorical": ["region", "employment"],
    "id_column": "loan_id",
}


def loan_records(n: int = 1500, seed: int = 7) -> list[dict[str, Any]]:
    """A synthetic, learnable loan-default dataset with the dirt real ingestion brings.

    About 12% positives (strongly unbalanced), missing values in every feature, numbers sent as
    strings, duplicates delivered twice and rows without a target.
    """
    rng = np.random.default_rng(seed)
    regions = np.array(["north", "south", "east", "west"])
    jobs = np.array(["salaried", "self_employed", "unemployed"])
    income = rng.lognormal(10.5, 0.5, n)
    debt = rng.uniform(0, 1, n)
    age = rng.integers(21, 70, n)
    lines = rng.poisson(4, n)
    region = regions[rng.integers(0, 4, n)]
    job = jobs[rng.choice(3, n, p=[0.7, 0.2, 0.1])]
    logit = (
        -4.3
        + 3.5 * debt
        - 0.6 * (np.log(income) - 10.5)
        + 1.6 * (job == "unemployed")
        + 0.5 * (region == "east")
    )
    defaulted = rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))
    records = []
    for i in range(n):
        rec: dict[str, Any] = {
            "loan_id": f"L{i:05d}",
            "income": round(float(income[i]), 2),
            "debt_ratio": round(float(debt[i]), 4),
            "age": int(age[i]),
            "credit_lines": int(lines[i]),
            "region": str(region[i]),
            "employment": str(job[i]),
            "defaulted": "yes" if defaulted[i] else "no",
            "ingested_at": "2024-05-01T00:00:00Z",
        }
        if i % 17 == 0:
            rec["income"] = None
        if i % 23 == 0:
            rec["employment"] = None
        if i % 29 == 0:
            rec["age"] = str(rec["age"])  # producers send numbers as text
        if i % 31 == 0:
            rec["debt_ratio"] = ""
        if i % 97 == 0:
            rec["defaulted"] = None
        records.append(rec)
    records.extend(dict(r) for r in records[10:25])  # at-least-once delivery: duplicates
    return records


def write_firehose(raw: Path, dataset: str, records: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Write records as Firehose does: partitioned folders, plain and gzip objects, an errors/ tree."""
    thirds = [records[i::3] for i in range(3)]
    files = [
        raw / dataset / "ingest_date=2024-05-01" / f"{dataset}-stream-1-2024-05-01-10-00-00-a1",
        raw / dataset / "ingest_date=2024-05-01" / f"{dataset}-stream-1-2024-05-01-11-00-00-b2.gz",
        raw / dataset / "ingest_date=2024-05-02" / f"{dataset}-stream-1-2024-05-02-09-00-00-c3.gz",
    ]
    for path, part in zip(files, thirds, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r) + "\n" for r in part).encode()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    errors = raw / "errors" / "processing-failed" / "ingest_date=2024-05-01" / "failed-1"
    errors.parent.mkdir(parents=True, exist_ok=True)
    errors.write_text('{"rawData": "bm90IGpzb24=", "errorCode": "Lambda.FunctionError"}\nnot json at all\n')
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The project image as the local engine runs it: its interpreter, its programs, its environment.
IMAGES: Final = ImageMap.project(LOCAL_IMAGE)
# What SageMaker declares for each channel of a File-mode training job.
CHANNEL: Final = {
    "TrainingInputMode": "File",
    "S3DistributionType": "FullyReplicated",
    "RecordWrapperType": "None",
}


@dataclass(frozen=True)
class Sandbox(JobSandbox):
    """One job's /opt/ml in a temporary folder (``emulators.core.sandbox``), and the entrypoints run in it."""

    schema: Mapping[str, Any] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        values = dict(extra)
        if self.schema is not None:
            values["ROOKERY_DATASET_SCHEMA"] = json.dumps(self.schema)
        return IMAGES.environment(LOCAL_IMAGE, self.base, values)

    def argv(self, entrypoint: str, *args: str) -> list[str]:
        return IMAGES.command(LOCAL_IMAGE, [f"{PROGRAM_DIR}/{entrypoint}", *args], default="")

    def run(
        self, entrypoint: str, *args: str, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(entrypoint, *args),
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def preprocess(self, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
        """The three preprocessing jobs on one instance, in this sandbox: each job's output is the next
        one's input (``pipelines.contract.PREPROCESS_PASSES``). The first that fails, else the last."""
        for entrypoint, _, output in PREPROCESS_PASSES:
            result = self.run(PurePosixPath(entrypoint[-1]).name, *args, timeout=timeout, **extra)
            if result.returncode != 0 or output is None:
                return result
            shutil.rmtree(self.processing_input(output), ignore_errors=True)
            shutil.copytree(self.processing_output(output), self.processing_input(output))
        raise AssertionError("PREPROCESS_PASSES ends with the Preprocess job")

    def start(
        self, entrypoint: str, *args: str, log: Path | None = None, **extra: str
    ) -> subprocess.Popen[str]:
        """Start an entrypoint; output to ``log`` (a long-running server must not fill a pipe) or a pipe."""
        out = log.open("w") if log else subprocess.PIPE
        try:
            return subprocess.Popen(
                self.argv(entrypoint, *args),
                env=self.env(**extra),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        finally:
            if log and not isinstance(out, int):
                out.close()

    @property
    def failure(self) -> str:
        return self.failure_file.read_text(encoding="utf-8")

    def training_job(
        self,
        hyperparameters: Mapping[str, Any],
        channels: Mapping[str, Path],
        *,
        declare: Sequence[str] | None = None,
    ) -> None:
        """Lay out /opt/ml/input as SageMaker does: config files and one folder per channel."""
        self.write_training_config(
            {k: str(v) for k, v in hyperparameters.items()},
            {
                name: {"ContentType": "application/json" if name == "preprocessor" else "text/csv", **CHANNEL}
                for name in (list(channels) if declare is None else list(declare))
            },
            {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"},
        )
        for name, source in channels.items():
            target = self.channel(name)
            target.mkdir(parents=True, exist_ok=True)
            for path in source.iterdir():
                (target / path.name).write_bytes(path.read_bytes())


def check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


@dataclass
class PipelineRun:
    """preprocess -> train -> evaluate on one dataset, each job in its own sandbox."""

    preprocess: Sandbox
    train: Sandbox
    evaluate: Sandbox
    train_log: str

    @property
    def model_dir(self) -> Path:
        return self.train.base / "model"

    @property
    def evaluation(self) -> dict[str, Any]:
        path = self.evaluate.processing_output("evaluation") / "evaluation.json"
        return dict(json.loads(path.read_text()))

    @property
    def report(self) -> dict[str, Any]:
        return dict(
            json.loads((self.preprocess.processing_output("report") / "data_report.json").read_text())
        )


def run_pipeline(
    root: Path,
    schema: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    hyperparameters: Mapping[str, Any],
    *,
    operating_point: str,
    preprocess_args: Sequence[str] = (),
) -> PipelineRun:
    prep = Sandbox(root / "preprocess", schema)
    write_firehose(prep.processing_input("raw"), str(schema["name"]), records)
    check(prep.preprocess(*preprocess_args))
    train = Sandbox(root / "train")
    train.training_job(
        hyperparameters,
        {name: prep.processing_output(name) for name in ("train", "validation", "preprocessor")},
    )
    train_log = check(train.run("train")).stdout
    (root / "train.log").write_text(train_log)
    evaluate = Sandbox(root / "evaluate")
    train.pack_model(evaluate.processing_input("model"))
    for name in ("test", "validation"):
        target = evaluate.processing_input(name)
        target.mkdir(parents=True)
        (target / f"{name}.csv").write_bytes((prep.processing_output(name) / f"{name}.csv").read_bytes())
    check(evaluate.run("evaluate.py", "--operating-point", operating_point))
    return PipelineRun(prep, train, evaluate, train_log)


def finished_pipeline(root: Path, schema: Mapping[str, Any]) -> PipelineRun:
    """A :func:`run_pipeline` result read back from its folder."""
    return PipelineRun(
        Sandbox(root / "preprocess", schema),
        Sandbox(root / "train"),
        Sandbox(root / "evaluate"),
        (root / "train.log").read_text(),
    )


@contextmanager
def built_once(shared: Path, name: str) -> Iterator[tuple[Path, bool]]:
    """``(folder, built)`` for ``name`` under ``shared``, built by the first pytest worker to get here.

    pytest-xdist runs session fixtures once per worker; the others wait on a file lock and reuse
    the folder, so each expensive pipeline runs once per test session.
    """
    shared.mkdir(parents=True, exist_ok=True)
    folder, marker = shared / name, shared / f"{name}.done"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = marker.exists()
            if not done:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
            yield folder, done
            marker.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Endpoint:
    url: str
    pid: int  # the serve entrypoint (uvicorn's supervisor when there are several workers)


@contextmanager
def serving(model_dir: Path, workers: int = 2, **extra: str) -> Iterator[Endpoint]:
    """Run the real `serve` entrypoint on 127.0.0.1 against ``model_dir`` until the block ends."""
    base = model_dir.parent
    port = free_port()
    sandbox = Sandbox(base)
    log = base / f"serve-{port}.log"
    process = sandbox.start(
        "serve",
        log=log,
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS=str(workers),
        ROOKERY_BIND_HOST="127.0.0.1",
        **extra,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield Endpoint(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"serve did not answer /ping within {timeout} s")
