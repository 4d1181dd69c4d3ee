"""Local Model Monitor: one monitoring job over a local endpoint's data capture, as a schedule would run it.

The job is the project image's ``monitor.py`` (the container the Serving stack schedules), run as a
subprocess in an ``/opt/ml`` sandbox with Model Monitor's environment: the endpoint's capture
files (``s3://<raw>/capture/<endpoint>/...``, linked, not copied, into
``processing/input/endpoint/<endpoint>/``), the model package's ``DriftCheckBaselines`` and, for
model quality, the ground truth under ``s3://<raw>/ground-truth/``. Its reports are uploaded to
``s3://<artifacts>/monitoring/<kind>/<endpoint>/<yyyy/mm/dd/hh>/`` of the local S3, as SageMaker
files a schedule's executions. The window is every file captured so far, or the files started
between ``start`` and ``end`` when they are given, as a schedule's execution gets the files of its
hour (a file's start is read from its name; a file whose name does not say is staged anyway, and
the job reports it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from emulators.core import procs
from emulators.core.home import LocalHome
from emulators.core.images import ImageMap
from emulators.s3 import LocalS3
from emulators.sagemaker.exceptions import MonitoringError
from emulators.sagemaker.models import ModelPackage
from rookery_contracts import monitoring as mon
from rookery_contracts.env import DATASET_SCHEMA_ENV
from stage import Stage
from stage.capture import capture_opened
from stage.names import CAPTURE_PREFIX, GROUND_TRUTH_PREFIX, MONITORING_PREFIX

# The DriftCheckBaselines section of each kind of monitoring.
BASELINE_SECTIONS: Final = {mon.DATA_QUALITY: "ModelDataQuality", mon.MODEL_QUALITY: "ModelQuality"}


@dataclass(frozen=True)
class MonitoringRun:
    """One finished local monitoring job: its report, violations and where they were uploaded."""

    kind: str
    endpoint: str
    report: dict[str, Any]
    violations: list[dict[str, Any]]
    output_uri: str
    log: Path

    @property
    def failed(self) -> bool:
        """A violation was found (what makes ``rookery local monitor`` exit non-zero)."""
        return bool(self.violations)


def _in_window(path: Path, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    opened = capture_opened(path.as_posix())
    return opened is None or ((start is None or opened >= start) and (end is None or opened <= end))


def _link_window(source: Path, target: Path, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """Hard-link (else copy) the capture files under ``source`` that belong to the window into
    ``target``; returns the file count."""
    count = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file() and _in_window(p, start, end)):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
        count += 1
    return count


def _baseline(s3: LocalS3, package: ModelPackage, kind: str, sandbox: Path) -> dict[str, str]:
    section = package.drift_check_baselines.get(BASELINE_SECTIONS[kind]) or {}
    found: dict[str, str] = {}
    for name, env in (
        ("Statistics", mon.BASELINE_STATISTICS_ENV),
        ("Constraints", mon.BASELINE_CONSTRAINTS_ENV),
    ):
        uri = (section.get(name) or {}).get("S3Uri")
        if not uri:
            continue
        source = s3.path(str(uri))
        if not source.is_file():
            raise MonitoringError(f"the baseline file {uri} of {package.ref} is missing from the local S3")
        dest = sandbox / "processing" / "baseline" / name.lower() / source.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        found[env] = str(dest)
    if mon.BASELINE_CONSTRAINTS_ENV not in found:
        raise MonitoringError(
            f"model package {package.ref} has no {BASELINE_SECTIONS[kind]} drift-check baseline; it was "
            "registered before the pipeline had a Baseline step: run the pipeline again and approve the "
            "new version"
        )
    return found


def run_monitoring(
    home: LocalHome,
    stage: Stage,
    package: ModelPackage,
    *,
    kind: str,
    endpoint: str,
    raw_bucket: str,
    artifacts_bucket: str,
    now: dt.datetime | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> MonitoringRun:
    """Run one ``kind`` monitoring job, at ``now`` (default: the present), over ``endpoint``'s capture
    with ``package``'s baseline: the files started from ``start`` to ``end`` (default: all of them)."""
    if kind not in mon.MONITOR_KINDS:
        raise MonitoringError(f"unknown monitoring kind {kind!r}; choose from {list(mon.MONITOR_KINDS)}")
    s3 = LocalS3(home)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    # Capture file names carry the millisecond: a file started within ``start``'s millisecond is in.
    since = start.astimezone(dt.UTC).replace(microsecond=start.microsecond // 1000 * 1000) if start else None
    until = end.astimezone(dt.UTC) if end else None
    if since is not None and until is not None and since > until:
        raise MonitoringError(f"the window starts at {since:%H:%M:%S.%f}, after its end {until:%H:%M:%S.%f}")
    job = f"{endpoint}-{kind}-{moment:%Y%m%d%H%M%S}{moment.microsecond // 1000:03d}"
    sandbox = home.root / "monitoring" / job
    if sandbox.exists():
        shutil.rmtree(sandbox)
    sandbox.mkdir(parents=True)
    env = _baseline(s3, package, kind, sandbox)
    source = sandbox / "processing" / "input" / "endpoint"
    source.mkdir(parents=True)
    _link_window(s3.path(f"s3://{raw_bucket}/{CAPTURE_PREFIX}{endpoint}"), source / endpoint, since, until)
    result = sandbox / "processing" / "resultdata"
    env.update(
        {
            DATASET_SCHEMA_ENV: stage.dataset.to_json(),
            mon.DATASET_FORMAT_ENV: mon.CAPTURE_DATASET_FORMAT,
            mon.DATASET_SOURCE_ENV: str(source),
            mon.OUTPUT_PATH_ENV: str(result),
            mon.PUBLISH_METRICS_ENV: mon.METRICS_ENABLED,
            mon.ENDPOINT_NAME_ENV: endpoint,
            mon.SCHEDULE_NAME_ENV: f"{endpoint}-{kind}",
            mon.END_TIME_ENV: f"{until or moment:%Y-%m-%dT%H:%M:%SZ}",
        }
    )
    if since is not None:
        env[mon.START_TIME_ENV] = f"{since:%Y-%m-%dT%H:%M:%SZ}"
    if kind == mon.MODEL_QUALITY:
        env[mon.GROUND_TRUTH_SOURCE_ENV] = str(s3.path(f"s3://{raw_bucket}/{GROUND_TRUTH_PREFIX}"))
    image = str(package.inference_spec.get("image"))
    images = ImageMap.project(image)
    argv = [*images.command(image, list(mon.MONITOR_ENTRYPOINT), default=""), kind]
    log = sandbox / "job.log"
    with log.open("w", encoding="utf-8") as handle:
        outcome = procs.run(argv, env=images.environment(image, sandbox, env), cwd=sandbox, log=handle)
    if outcome.exit_code != 0:
        message = sandbox / "output" / "message"
        reason = message.read_text(encoding="utf-8").strip() if message.is_file() else f"see {log}"
        raise MonitoringError(f"the {kind} monitoring job failed: {reason}")
    output_uri = f"s3://{artifacts_bucket}/{MONITORING_PREFIX}{kind}/{endpoint}/{moment:%Y/%m/%d/%H}"
    s3.upload(result, output_uri)
    s3.upload(sandbox / "output" / "metrics", f"{output_uri}/metrics")
    report = json.loads((result / mon.REPORT_FILE).read_text(encoding="utf-8"))
    violations = json.loads((result / mon.VIOLATIONS_FILE).read_text(encoding="utf-8"))["violations"]
    return MonitoringRun(kind, endpoint, report, violations, output_uri, log)
